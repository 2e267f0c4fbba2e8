"""Online anomaly scoring with River's Half-Space Trees."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

from river import anomaly

from fraudstream.core.batch_hst import BatchHalfSpaceTrees
from fraudstream.core.behaviour import HST_FEATURES


@dataclass(frozen=True, slots=True)
class HSTParams:
    """Half-Space Trees hyper-parameters (see River's ``anomaly.HalfSpaceTrees``)."""

    n_trees: int = 25
    # Leaves need mass to tell normal from rare: with 2**height near window_size every
    # leaf is nearly empty and all scores saturate near 1 (measured: normal p50 0.72 at
    # height 8 / window 250, 0.41 at height 4 / window 1000, with far better separation).
    height: int = 5
    window_size: int = 1000
    seed: int = 42


class HalfSpaceTreesScorer:
    """Scores feature vectors in [0, 1] and learns from them one at a time.

    Scores are meaningless until the model has learned ``warmup`` events (River returns 0
    until its first reference window is full), so :attr:`warmed_up` gates model alerts.

    >>> scorer = HalfSpaceTreesScorer(HSTParams(n_trees=3, height=3, window_size=4), warmup=4)
    >>> x = dict.fromkeys(HST_FEATURES, 0.1)
    >>> for _ in range(4):
    ...     _ = scorer.score(x); scorer.learn(x)
    >>> scorer.warmed_up, 0.0 <= scorer.score(x) <= 1.0
    (True, True)
    """

    def __init__(self, params: HSTParams, warmup: int) -> None:
        self.params = params
        self.warmup = warmup
        self.learned = 0
        self._batch: BatchHalfSpaceTrees | None = None
        limits: dict[Hashable, tuple[float, float]] = {name: (0.0, 1.0) for name in HST_FEATURES}
        self.model = anomaly.HalfSpaceTrees(
            n_trees=params.n_trees,
            height=params.height,
            window_size=params.window_size,
            limits=limits,
            seed=params.seed,
        )

    @property
    def warmed_up(self) -> bool:
        """True once enough events were learned for scores to mean something."""
        return self.learned >= self.warmup

    def score(self, features: dict[str, float]) -> float:
        """Anomaly score in [0, 1] of the :data:`HST_FEATURES` inputs; high means unusual."""
        return float(self.model.score_one(_model_view(features)))

    def learn(self, features: dict[str, float]) -> None:
        """Add one event to the model's reference of normal behaviour."""
        self.model.learn_one(_model_view(features))
        self.learned += 1
        # The batch mirror cannot see every change River makes one event at a time (a whole
        # window learned here leaves its counter where it was): it is rebuilt when next used.
        self._batch = None

    def batch(self) -> BatchHalfSpaceTrees:
        """The exact batch path over :attr:`model` (rows in :data:`HST_FEATURES` order).

        Whoever learns through it counts :attr:`learned` itself. Rebuilt after a single-event
        :meth:`learn` or when the model is replaced (a restored checkpoint).
        """
        if self._batch is None or self._batch.model is not self.model:
            self._batch = BatchHalfSpaceTrees(self.model, HST_FEATURES)
        return self._batch


def _model_view(features: dict[str, float]) -> dict[str, float]:
    return {name: features[name] for name in HST_FEATURES}


class AdaptiveThreshold:
    """Decision threshold that follows the recent score distribution.

    The threshold is the ``quantile`` of the last ``window`` scores, recomputed every
    ``refresh_every`` scores, but never below ``floor``: a quiet stream does not get
    alerts just because some score must be the highest. With ``quantile=None`` it is the
    fixed ``floor``. Until it has seen ``min_samples`` scores it is not :attr:`ready`: the
    quantile of a handful of scores would let a burst of alerts through right after warm-up.

    >>> threshold = AdaptiveThreshold(0.5, 0.9, window=10, refresh_every=1, min_samples=10)
    >>> for s in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]:
    ...     threshold.observe(s)
    >>> threshold.ready, threshold.value
    (True, 1.0)
    """

    def __init__(
        self,
        floor: float,
        quantile: float | None,
        window: int = 5000,
        refresh_every: int = 100,
        min_samples: int = 1000,
    ) -> None:
        self.floor = floor
        self.quantile = quantile
        self.window = window
        self.refresh_every = refresh_every
        self.min_samples = min(min_samples, window)
        self.recent: deque[float] = deque(maxlen=window)
        self.value = floor
        self._since_refresh = 0

    @property
    def ready(self) -> bool:
        """True once the threshold has seen enough scores to be trusted."""
        return self.quantile is None or len(self.recent) >= self.min_samples

    def observe(self, score: float) -> None:
        """Add a score (of an event past the warm-up) to the recent distribution."""
        if self.quantile is None:
            return
        self.recent.append(score)
        self._since_refresh += 1
        if self._since_refresh >= self.refresh_every:
            self._since_refresh = 0
            ordered = sorted(self.recent)
            rank = min(len(ordered) - 1, int(self.quantile * len(ordered)))
            self.value = max(self.floor, ordered[rank])
