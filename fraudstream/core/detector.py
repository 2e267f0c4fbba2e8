"""The detection core: one transaction and its user's profile in, a decision out.

Pure Python plus River; the Faust worker, the evaluator and the benchmarks all call
:meth:`Detector.process` the same way.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from fraudstream.core.features import (
    COUNTRY_FIELD,
    FEATURE_NAMES,
    MERCHANT_FIELD,
    FeatureScales,
    UserProfile,
    compute_features,
    update_profile,
)
from fraudstream.core.merchants import FEATURE_NAMES as MERCHANT_FEATURES
from fraudstream.core.merchants import MerchantStats
from fraudstream.core.model import AdaptiveThreshold, HalfSpaceTreesScorer, HSTParams
from fraudstream.core.records import (
    Alert,
    Reason,
    ReasonKind,
    ReasonName,
    Transaction,
    alert_id_for,
    isoformat_utc,
)
from fraudstream.core.rules import AmountThresholdRule, HabitSpikeRule, Rule, UnfamiliarPlaceRule
from fraudstream.core.supervised import ClassifierParams, FraudClassifier, LabelRate


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
    classifier: ClassifierParams = field(default_factory=ClassifierParams)
    #: Classifier alert when P(fraud) >= this (once the classifier is ready).
    classifier_threshold: float = 0.9


#: What the classifier sees, in this order (pending entries store the values as a tuple):
#: the user's behaviour features, the merchant's, Half-Space Trees' score and time of day.
CLASSIFIER_FEATURES = (
    *FEATURE_NAMES,
    *MERCHANT_FEATURES,
    "hst_score",
    "night",
    "weekend",
)
_NEUTRAL_MERCHANT = MerchantStats()


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome for one transaction; ``alert`` is set when any reason fired.

    ``risk`` is the one ranking score in [0, 1] (an alert fires exactly when it reaches 0.5):
    the highest of ``parts``, each part's own score mapped so that its alert line is 0.5
    (``rules``: 1 when a rule fired; ``half_space_trees``; ``fraud_classifier`` once ready).
    ``probability`` is the classifier's P(fraud), None until it is ready; ``model_input`` is
    what the classifier learns from once the transaction's label is known.
    """

    score: float
    features: dict[str, float]
    alert: Alert | None
    redelivered: bool = False
    risk: float = 0.0
    probability: float | None = None
    model_input: tuple[float, ...] = ()
    parts: dict[str, float] = field(default_factory=dict)

    def to_json(self, tx: Transaction) -> bytes:
        """One line of JSON for the decisions topic: every transaction's score, not only alerts."""
        return orjson.dumps(
            {
                "transactionId": tx.transaction_id,
                "userId": tx.user_id,
                "timestamp": isoformat_utc(tx.timestamp),
                "risk": round(self.risk, 6),
                "parts": {name: round(value, 6) for name, value in self.parts.items()},
                "alert": self.alert is not None,
                "reasons": self.alert.reason_names if self.alert is not None else [],
            }
        )


#: Bumped when the pickled model state changes shape; older checkpoints are then ignored.
#: 2: the model sees habit-excess, velocity and new-country features instead of amount/z-score.
#: 3: the supervised classifier and the label rate are part of the state.
MODEL_STATE_VERSION = 3


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
        self.classifier = FraudClassifier(config.classifier)
        self.label_rate = LabelRate()

    def process(
        self,
        tx: Transaction,
        profile: UserProfile,
        partition: int,
        offset: int,
        now: datetime,
        merchant: MerchantStats | None = None,
    ) -> Decision:
        """Score ``tx``, update ``profile`` in place, and decide whether to alert.

        ``merchant`` is what is known of the transaction's merchant (traffic and labels).

        A message the profile has already applied (a redelivery after a crash) is scored
        without touching the profile or the model; if it alerts, the alert id is the same
        as the first time.
        """
        event_time = tx.epoch_seconds
        redelivered = profile.has_applied(partition, offset)
        places = {MERCHANT_FIELD: tx.merchant, COUNTRY_FIELD: tx.country}
        features = compute_features(profile, tx.amount, event_time, self.config.scales, places)
        score = self.scorer.score(features)

        model_input = self.classifier_input(tx, features, score, merchant)
        named_input = dict(zip(CLASSIFIER_FEATURES, model_input, strict=True))

        reasons: list[Reason] = []
        parts = {"rules": 0.0, "half_space_trees": 0.0, "fraud_classifier": 0.0}
        for rule in self.rules:
            reason = rule.check(tx, profile, features)
            if reason is not None:
                reasons.append(reason)
                parts["rules"] = 1.0
        if self.scorer.warmed_up:
            threshold = self.threshold.value
            if self.threshold.ready:
                parts["half_space_trees"] = _half_at(score, threshold)
                if score >= threshold:
                    details = {"score": round(score, 4), "threshold": round(threshold, 4)}
                    reasons.append(Reason(ReasonKind.MODEL, ReasonName.HALF_SPACE_TREES, details))
            if not redelivered:
                self.threshold.observe(score)
        probability = None
        if self.classifier.ready:
            probability = self.classifier.predict_proba_one(named_input)
            threshold = self.config.classifier_threshold
            parts["fraud_classifier"] = _half_at(probability, threshold)
            if probability >= threshold:
                details = {"probability": round(probability, 4), "threshold": threshold}
                reasons.append(Reason(ReasonKind.MODEL, ReasonName.FRAUD_CLASSIFIER, details))
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
        risk = max(parts.values())
        return Decision(score, features, alert, redelivered, risk, probability, model_input, parts)

    def classifier_input(
        self,
        tx: Transaction,
        features: dict[str, float],
        hst_score: float,
        merchant: MerchantStats | None,
    ) -> tuple[float, ...]:
        """The classifier's view of one transaction, in :data:`CLASSIFIER_FEATURES` order."""
        stats = merchant or _NEUTRAL_MERCHANT
        merchant_features = stats.features(tx.epoch_seconds, tx.amount, self.label_rate.value)
        hour = tx.timestamp.hour
        return (
            *(features[name] for name in FEATURE_NAMES),
            *(merchant_features[name] for name in MERCHANT_FEATURES),
            hst_score,
            1.0 if hour < 6 else 0.0,
            1.0 if tx.timestamp.weekday() >= 5 else 0.0,
        )

    def learn_label(
        self, model_input: tuple[float, ...], fraud: bool, event_time: float, correction: bool
    ) -> None:
        """Learn one resolved transaction: its label, or legit once it matured unlabeled.

        A ``correction`` is a fraud label for a transaction already learned as legit: the
        classifier learns the fraud too, and the label rate trades one legit for one fraud.
        """
        if len(model_input) == len(CLASSIFIER_FEATURES):  # entries from an older version: skip
            self.classifier.learn_one(
                dict(zip(CLASSIFIER_FEATURES, model_input, strict=True)), fraud
            )
        if correction:
            self.label_rate.learn(False, event_time, weight=-1.0)
        self.label_rate.learn(fraud, event_time)

    def model_state(self) -> bytes:
        """The learned state (Half-Space Trees and recent scores) as bytes, for checkpoints."""
        state = {
            "version": MODEL_STATE_VERSION,
            "hst": self.config.hst,
            "learned": self.scorer.learned,
            "model": self.scorer.model,
            "recent_scores": list(self.threshold.recent),
            "threshold": self.threshold.value,
            "classifier": self.classifier,
            "label_rate": self.label_rate,
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
        if state["classifier"].params != self.config.classifier:
            return "checkpoint has another classifier configuration"
        self.classifier = state["classifier"]
        self.label_rate = state["label_rate"]
        self.scorer.model = state["model"]
        self.scorer.learned = state["learned"]
        self.threshold.recent.clear()
        self.threshold.recent.extend(state["recent_scores"])
        self.threshold.value = state["threshold"]
        return None


def _half_at(value: float, threshold: float) -> float:
    """Map ``value`` in [0, 1] so that ``threshold`` lands on 0.5 (monotone, piecewise linear).

    >>> _half_at(0.9, 0.9), _half_at(0.45, 0.9), _half_at(1.0, 0.9)
    (0.5, 0.25, 1.0)
    """
    if threshold <= 0.0:
        return 1.0 if value > 0.0 else 0.5
    if value < threshold:
        return 0.5 * value / threshold
    if threshold >= 1.0:
        return 1.0
    return 0.5 + 0.5 * (value - threshold) / (1.0 - threshold)
