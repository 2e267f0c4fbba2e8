"""Online anomaly scoring with River's Half-Space Trees."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

from river import anomaly

from fraudstream.features import FEATURE_NAMES


@dataclass(frozen=True, slots=True)
class HSTParams:
    """Half-Space Trees hyper-parameters (see River's ``anomaly.HalfSpaceTrees``)."""

    n_trees: int = 10
    height: int = 8
    window_size: int = 250
    seed: int = 42


class HalfSpaceTreesScorer:
    """Scores feature vectors in [0, 1] and learns from them one at a time.

    Scores are meaningless until the model has learned ``warmup`` events (River returns 0
    until its first reference window is full), so :attr:`warmed_up` gates model alerts.

    >>> scorer = HalfSpaceTreesScorer(HSTParams(n_trees=3, height=3, window_size=4), warmup=4)
    >>> x = {"amount": 0.2, "amount_zscore": 0.5, "since_previous": 0.3, "velocity": 0.1}
    >>> for _ in range(4):
    ...     _ = scorer.score(x); scorer.learn(x)
    >>> scorer.warmed_up, 0.0 <= scorer.score(x) <= 1.0
    (True, True)
    """

    def __init__(self, params: HSTParams, warmup: int) -> None:
        self.params = params
        self.warmup = warmup
        self.learned = 0
        limits = {name: (0.0, 1.0) for name in FEATURE_NAMES}
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
        """Anomaly score in [0, 1]; high means unusual."""
        return float(self.model.score_one(features))

    def learn(self, features: dict[str, float]) -> None:
        """Add one event to the model's reference of normal behaviour."""
        self.model.learn_one(features)
        self.learned += 1

    def dumps(self) -> bytes:
        """Snapshot of the model and its progress (for checkpoints)."""
        return pickle.dumps((self.params, self.warmup, self.learned, self.model))

    @classmethod
    def loads(cls, blob: bytes) -> HalfSpaceTreesScorer:
        """Restore a snapshot made by :meth:`dumps` (trusted, locally written data only)."""
        params, warmup, learned, model = pickle.loads(blob)  # noqa: S301
        scorer = cls(params, warmup)
        scorer.learned = learned
        scorer.model = model
        return scorer
