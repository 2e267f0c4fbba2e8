"""The detection core: one transaction and its user's profile in, a decision out.

Pure Python plus River; the Faust worker, the evaluator and the benchmarks all call
:meth:`Detector.process` the same way.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import datetime

from fraudstream.core.features import (
    COUNTRY_FIELD,
    MERCHANT_FIELD,
    FeatureScales,
    UserProfile,
    compute_features,
    update_profile,
)
from fraudstream.core.model import AdaptiveThreshold, HalfSpaceTreesScorer, HSTParams
from fraudstream.core.records import (
    Alert,
    Reason,
    ReasonKind,
    ReasonName,
    Transaction,
    alert_id_for,
)
from fraudstream.core.rules import AmountThresholdRule, HabitSpikeRule, Rule, UnfamiliarPlaceRule


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """What the detector needs from the settings."""

    amount_threshold: float = 10000.0
    habit_spike_zscore: float = 4.5
    habit_spike_min_history: int = 3
    unfamiliar_place_zscore: float = 2.0
    score_threshold: float = 0.76
    score_quantile: float | None = None
    score_quantile_window: int = 5000
    score_quantile_min_samples: int = 1000
    hst: HSTParams = field(default_factory=HSTParams)
    warmup: int = 1000
    scales: FeatureScales = field(default_factory=FeatureScales)


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome for one transaction; ``alert`` is set when any reason fired."""

    score: float
    features: dict[str, float]
    alert: Alert | None
    redelivered: bool = False


#: Bumped when the pickled model state changes shape; older checkpoints are then ignored.
#: 2: the model sees habit-excess, velocity and new-country features instead of amount/z-score.
MODEL_STATE_VERSION = 2


class Detector:
    """Rules (amount, habit spike) + Half-Space Trees over per-user features.

    The model scores each event before learning it; events that raised an alert are kept
    out of learning so a burst of fraud does not become the model's idea of normal.
    """

    def __init__(self, config: DetectorConfig, scorer: HalfSpaceTreesScorer | None = None) -> None:
        self.config = config
        self.rules: tuple[Rule, ...] = (
            AmountThresholdRule(config.amount_threshold),
            HabitSpikeRule(config.habit_spike_zscore, config.habit_spike_min_history),
            UnfamiliarPlaceRule(config.unfamiliar_place_zscore, config.habit_spike_min_history),
        )
        self.scorer = scorer or HalfSpaceTreesScorer(config.hst, config.warmup)
        self.threshold = AdaptiveThreshold(
            config.score_threshold,
            config.score_quantile,
            config.score_quantile_window,
            min_samples=config.score_quantile_min_samples,
        )

    def process(
        self,
        tx: Transaction,
        profile: UserProfile,
        partition: int,
        offset: int,
        now: datetime,
    ) -> Decision:
        """Score ``tx``, update ``profile`` in place, and decide whether to alert.

        A message the profile has already applied (a redelivery after a crash) is scored
        without touching the profile or the model; if it alerts, the alert id is the same
        as the first time.
        """
        event_time = tx.epoch_seconds
        redelivered = profile.has_applied(partition, offset)
        places = {MERCHANT_FIELD: tx.merchant, COUNTRY_FIELD: tx.country}
        features = compute_features(profile, tx.amount, event_time, self.config.scales, places)
        score = self.scorer.score(features)

        reasons: list[Reason] = []
        for rule in self.rules:
            reason = rule.check(tx, profile, features)
            if reason is not None:
                reasons.append(reason)
        if self.scorer.warmed_up:
            threshold = self.threshold.value
            if self.threshold.ready and score >= threshold:
                details = {"score": round(score, 4), "threshold": round(threshold, 4)}
                reasons.append(Reason(ReasonKind.MODEL, ReasonName.HALF_SPACE_TREES, details))
            if not redelivered:
                self.threshold.observe(score)
        suspicious = bool(reasons)

        if not redelivered:
            if not suspicious:
                self.scorer.learn(features)
            update_profile(
                profile,
                tx.amount,
                event_time,
                self.config.scales,
                partition,
                offset,
                suspicious=suspicious,
                extra=places,
            )

        alert = None
        if suspicious:
            alert = Alert(alert_id_for(tx), tx, now, score, reasons, features)
        return Decision(score, features, alert, redelivered)

    def model_state(self) -> bytes:
        """The learned state (Half-Space Trees and recent scores) as bytes, for checkpoints."""
        state = {
            "version": MODEL_STATE_VERSION,
            "hst": self.config.hst,
            "learned": self.scorer.learned,
            "model": self.scorer.model,
            "recent_scores": list(self.threshold.recent),
            "threshold": self.threshold.value,
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def restore_model_state(self, blob: bytes) -> str | None:
        """Continue from a checkpoint; returns why it was refused, or None when restored.

        Only unpickle checkpoints this worker wrote itself: pickle runs code on load.
        """
        try:
            state = pickle.loads(blob)  # only our own checkpoint file, never foreign input
        except Exception as exc:  # a torn or foreign file must not stop the worker
            return f"unreadable checkpoint ({type(exc).__name__}: {exc})"
        if not isinstance(state, dict) or state.get("version") != MODEL_STATE_VERSION:
            return "checkpoint from another fraudstream version"
        if state["hst"] != self.config.hst:
            return f"checkpoint has HST {state['hst']}, settings say {self.config.hst}"
        self.scorer.model = state["model"]
        self.scorer.learned = state["learned"]
        self.threshold.recent.clear()
        self.threshold.recent.extend(state["recent_scores"])
        self.threshold.value = state["threshold"]
        return None
