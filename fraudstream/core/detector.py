"""The detection core: one transaction and its user's history in, a decision out.

Pure Python plus River; the Faust worker, the evaluator and the benchmarks all call
:meth:`Detector.process` the same way.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import operator
import pickle
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple

import numpy as np
import orjson

from fraudstream.core.batch_hst import BoolArray, FloatArray
from fraudstream.core.behaviour import (
    ALERT_MEMORY,
    BEHAVIOUR_FEATURES,
    HST_FEATURES,
    SCALE_PRIOR_WEIGHT,
    VELOCITY_TAU,
    BehaviourFeatures,
    ScaleEvidence,
    UserHistory,
    habit_excess_alone,
    hst_view,
)
from fraudstream.core.categories import (
    MERCHANT_ALERT_HOLD,
    MERCHANT_ORDINARY_Z,
    CategoryProfiles,
    rarity_z,
)
from fraudstream.core.clock import ClockStep
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
from fraudstream.core.rule_definitions import RuleSet, seed_definitions
from fraudstream.core.rules import (
    AmountThresholdRule,
    HabitSpikeRule,
    Rule,
    UnfamiliarPlaceRule,
    UserDeviationRule,
    beyond,
    burst_zscore,
)
from fraudstream.core.segments import segment_log_odds
from fraudstream.core.supervised import (
    CalibrationParams,
    ClassifierParams,
    FraudClassifier,
    LabelRate,
    PartTrust,
    ThresholdFromLabels,
    TrustParams,
)
from fraudstream.core.units import AmountUnit

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """What the detector needs from the settings."""

    #: The amount rule's line in the stream's amounts; None: 10,000 of the amount unit.
    amount_threshold: float | None = None
    habit_spike_zscore: float = 4.5
    habit_spike_min_history: int = 3
    unfamiliar_place_zscore: float = 2.0
    unfamiliar_place_distance_ratio: float = 3.0
    deviation_zscore: float = 4.5
    deviation_min_history: int = 5
    deviation_zscore_after_alert: float = 3.0
    deviation_alert_memory: float = ALERT_MEMORY
    burst_zscore: float = 4.0
    spree_threshold: float = 3.0
    spree_day_spend: float = 1.5
    #: A transaction whose burst statistic reaches this is kept out of learning (below the
    #: alert line: the start of a burst must not teach "normal" before the rule fires).
    learn_zscore: float = 3.0
    #: In a category new to the user, an amount at least this share of the category's payments
    #: reach is no amount evidence alone (:mod:`fraudstream.core.categories`); 0 turns it off.
    common_category_share: float = 0.05
    #: How many of a user's amounts the stream's raw-or-log evidence is worth to a young
    #: history (:class:`fraudstream.core.behaviour.ScaleEvidence`); 0: the user's own alone.
    scale_prior_weight: float = SCALE_PRIOR_WEIGHT
    score_threshold: float = 0.76
    score_quantile: float | None = None
    score_quantile_window: int = 5000
    score_quantile_min_samples: int = 1000
    hst: HSTParams = field(default_factory=HSTParams)
    warmup: int = 2000
    velocity_tau: float = VELOCITY_TAU
    classifier: ClassifierParams = field(default_factory=ClassifierParams)
    #: The classifier's alert line on P(fraud), learned from the labels.
    calibration: CalibrationParams = field(default_factory=CalibrationParams)
    trust: TrustParams = field(default_factory=TrustParams)
    #: The unit amounts are read in by the features (:mod:`fraudstream.core.units`); None:
    #: chosen from the median of the first amounts.
    amount_unit: float | None = None
    #: The step the stream's timestamps come in, seconds (:mod:`fraudstream.core.clock`; 0:
    #: exact); None: decided from the first timestamps.
    timestamp_step: float | None = None
    #: Whether labels will come (``FRAUDSTREAM_LABELS_ENABLED``). Without them, and without a
    #: classifier restored ready, nothing reads the classifier's input or the merchant and
    #: segment statistics it is built from, so decisions skip them (a worker without labels
    #: 1.33x per CPU-second: docs/performance.md).
    labels_enabled: bool = True

    @property
    def deviation_alert_memory_days(self) -> float:
        """``deviation_alert_memory`` in days, as the settings and rule definitions give it."""
        return self.deviation_alert_memory / DAY


#: The rules whose levels the classifier sees (0 while such a rule is not active).
RULE_IDS = tuple(
    name.value
    for name in (
        ReasonName.AMOUNT_THRESHOLD,
        ReasonName.HABIT_SPIKE,
        ReasonName.UNFAMILIAR_PLACE,
        ReasonName.USER_DEVIATION,
    )
)
#: Their names among the classifier's features.
RULE_FEATURES = tuple(f"rule_{rule_id}" for rule_id in RULE_IDS)
#: What the classifier sees, in this order (pending entries store the values as a tuple, then
#: the probability the transaction was scored with): the user's behaviour features, the
#: merchant's, the burst statistic, Half-Space Trees' score, every rule's level, the amount's
#: hinges, the clock and the amount segment's risk (:mod:`fraudstream.core.segments`).
#: Hinges of the amount's logarithm, a factor of sqrt(2) apart from 1 to 46,000 (any currency's
#: plausible card amounts): they let the linear classifier learn a step in the amount (a
#: linear model on log(amount) alone can only learn a slope) wherever the labels put it, to
#: within 20%. Handbook, 7-day labels, offline: AP 0.682 with hinges a factor 3 apart, 0.688
#: a factor 2, 0.70 a factor sqrt(2) (its "amount > 220" frauds caught 0.07 -> 0.39).
_HINGE_LOG2 = tuple(k / 2 for k in range(32))
AMOUNT_HINGES = tuple(2.0**x for x in _HINGE_LOG2)
#: ``amount_log2_over_<x>``: max(0, log(1 + amount) - log(1 + 2**x)).
HINGE_FEATURES = tuple(f"amount_log2_over_{x:g}" for x in _HINGE_LOG2)
#: The hour of the day (of the timestamps' own clock, UTC) in eight 3-hour bands, and the
#: weekend: fraud keeps its own hours (the handbook's features include night and weekend), and
#: a linear model learns a band's weight where a single hour feature could only learn a slope.
#: Sparkov-style stream, 7-day labels, offline: AP 0.456 -> 0.484.
HOUR_BANDS = 8
CLOCK_FEATURES = (*(f"hour_{3 * i:02d}_{3 * i + 3:02d}" for i in range(HOUR_BANDS)), "weekend")
CLASSIFIER_FEATURES = (
    *BEHAVIOUR_FEATURES,
    *MERCHANT_FEATURES,
    "burst_zscore",
    "hst_score",
    *RULE_FEATURES,
    *HINGE_FEATURES,
    *CLOCK_FEATURES,
    "segment_risk",
)
#: Stored in place of the probability when the classifier was not ready at scoring time.
NOT_SCORED = -1.0
_NEUTRAL_MERCHANT = MerchantStats()
_BEHAVIOUR_VALUES = operator.itemgetter(*BEHAVIOUR_FEATURES)
_MERCHANT_VALUES = operator.itemgetter(*MERCHANT_FEATURES)
_RULES_AT = CLASSIFIER_FEATURES.index(RULE_FEATURES[0])
#: Where the rule levels sit in a model input (they are side by side).
_RULE_SLICE = slice(_RULES_AT, _RULES_AT + len(RULE_FEATURES))
_LOG_HINGES = tuple(math.log1p(edge) for edge in AMOUNT_HINGES)
_NO_HINGES = (0.0,) * len(_LOG_HINGES)


def _hinges(log_amount: float) -> tuple[float, ...]:
    """``max(0, log_amount - edge)`` for every hinge edge: the edges below, then zeros (a fifth
    of the generator's cost).

    >>> _hinges(_LOG_HINGES[2]) == tuple(max(0.0, _LOG_HINGES[2] - e) for e in _LOG_HINGES)
    True
    """
    k = bisect.bisect_right(_LOG_HINGES, log_amount)
    return (*[log_amount - edge for edge in _LOG_HINGES[:k]], *_NO_HINGES[k:])


_BANDS = tuple(tuple(1.0 if j == i else 0.0 for j in range(HOUR_BANDS)) for i in range(HOUR_BANDS))


def _clock_bands(epoch_seconds: float) -> tuple[float, ...]:
    """One-hot hour band and a weekend flag (1970-01-01 was a Thursday).

    >>> _clock_bands(1_733_533_200.0)  # Saturday 2024-12-07, 01:00 UTC
    (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    >>> _clock_bands(1_733_787_000.0)  # Monday 2024-12-09, 23:30 UTC
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    """
    day, seconds = divmod(int(epoch_seconds), 86_400)
    weekend = 1.0 if (day + 3) % 7 >= 5 else 0.0
    return (*_BANDS[seconds // 10_800], weekend)


@dataclass(frozen=True, slots=True, init=False)
class Decision:
    """Outcome for one transaction; ``alert`` is set exactly when ``risk`` reaches 0.5.

    ``parts`` holds each part's own score mapped so that its alert line is 0.5 (``rules``: the
    strongest rule level; ``half_space_trees``; ``fraud_classifier`` once ready). ``risk`` is the
    one ranking score in [0, 1]: before the classifier is ready the highest part; once it is,
    the classifier's part, lifted to ``0.5 + 0.5 * part`` when the rules or Half-Space Trees
    fired and the labels still trust that part's alerts (:class:`PartTrust`). ``probability``
    is the classifier's P(fraud), None until it is ready; ``model_input`` is what it learns
    from once the transaction's label is known (empty where no label will come:
    :attr:`Detector.reads_classifier_input`).
    """

    score: float
    features: dict[str, float]
    alert: Alert | None
    redelivered: bool = False
    risk: float = 0.0
    probability: float | None = None
    model_input: tuple[float, ...] = ()
    parts: dict[str, float] = field(default_factory=dict)
    #: Shadow rules' hits (named by rule id, stamped with the version): reported, never alerted.
    shadow_hits: tuple[Reason, ...] = ()
    #: Active allow lists that vouched for the transaction (then there is no alert at all).
    allowed_by: tuple[Reason, ...] = ()

    def __init__(
        self,
        score: float,
        features: dict[str, float],
        alert: Alert | None,
        redelivered: bool = False,
        risk: float = 0.0,
        probability: float | None = None,
        model_input: tuple[float, ...] = (),
        parts: dict[str, float] | None = None,
        shadow_hits: tuple[Reason, ...] = (),
        allowed_by: tuple[Reason, ...] = (),
    ) -> None:
        # written out so that mypyc compiles it (see fraudstream.native)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "alert", alert)
        object.__setattr__(self, "redelivered", redelivered)
        object.__setattr__(self, "risk", risk)
        object.__setattr__(self, "probability", probability)
        object.__setattr__(self, "model_input", model_input)
        object.__setattr__(self, "parts", {} if parts is None else parts)
        object.__setattr__(self, "shadow_hits", shadow_hits)
        object.__setattr__(self, "allowed_by", allowed_by)

    def to_json(self, tx: Transaction) -> bytes:
        """One line of JSON for the decisions topic: every transaction's score, not only alerts."""
        return orjson.dumps(
            {
                "transactionId": tx.transaction_id,
                "userId": tx.user_id,
                "timestamp": isoformat_utc(tx.timestamp),
                "risk": _floor6(self.risk),
                "parts": {name: _floor6(value) for name, value in self.parts.items()},
                "alert": self.alert is not None,
                "reasons": self.alert.reason_names if self.alert is not None else [],
            }
        )


#: Bumped when the pickled model state changes shape; older checkpoints are then ignored.
#: 2: the model sees habit-excess, velocity and new-country features instead of amount/z-score.
#: 3: the supervised classifier and the label rate are part of the state.
#: 4: behaviour features of :mod:`fraudstream.core.behaviour`; the classifier's alert line.
MODEL_STATE_VERSION = 4


def builtin_rules(config: DetectorConfig) -> tuple[Rule, ...]:
    """The four built-in rules as code: what :func:`seed_definitions` writes as data.

    The detector runs the seeded :class:`RuleSet`; these stay as the reference the seeded
    definitions are checked against.
    """
    return (
        AmountThresholdRule.configured(config.amount_threshold),
        HabitSpikeRule(config.habit_spike_zscore, config.habit_spike_min_history),
        UnfamiliarPlaceRule(
            config.unfamiliar_place_zscore,
            config.habit_spike_min_history,
            config.unfamiliar_place_distance_ratio,
        ),
        _deviation_rule(config),
    )


def _deviation_rule(config: DetectorConfig) -> UserDeviationRule:
    return UserDeviationRule(
        config.deviation_zscore,
        config.deviation_min_history,
        config.deviation_zscore_after_alert,
        config.deviation_alert_memory,
        config.burst_zscore,
        config.spree_threshold,
        config.spree_day_spend,
    )


class SharedStats(NamedTuple):
    """What the worker knows of a transaction's merchant and amount segment, from traffic and
    labels (None: never seen): statistics shared by every user, unlike the user's history;
    see :mod:`fraudstream.core.merchants` and :mod:`fraudstream.core.segments`."""

    merchant: MerchantStats | None = None
    segment: MerchantStats | None = None


NO_SHARED_STATS = SharedStats()


class RoundItem(NamedTuple):
    """One transaction of a :meth:`Detector.process_round`, as :meth:`Detector.process` takes it
    (a named tuple: one is made per transaction, at a fifth of a frozen dataclass's cost)."""

    tx: Transaction
    history: UserHistory
    partition: int
    offset: int
    now: datetime


class Detector:
    """Rules + Half-Space Trees + a classifier learned from labels, over per-user behaviour.

    Every event is scored before anything learns from it; an alerted event, or one already
    close to a burst, is kept out of the user's habit and out of Half-Space Trees, so a burst
    of fraud does not become the idea of normal.

    The rules are a :class:`RuleSet` (by default the built-in rules seeded from ``config``);
    whoever owns the detector may apply new versions to it between two events.
    """

    def __init__(
        self,
        config: DetectorConfig,
        scorer: HalfSpaceTreesScorer | None = None,
        rules: RuleSet | None = None,
    ) -> None:
        self.config = config
        #: The step the stream's timestamps come in (the features read gaps at least a third).
        self.clock = ClockStep(config.timestamp_step)
        self.behaviour = BehaviourFeatures(
            config.velocity_tau,
            config.deviation_alert_memory,
            ScaleEvidence(weight=config.scale_prior_weight),
            self.clock,
        )
        if rules is None:
            rules = RuleSet(seed_definitions(config, datetime.now(timezone.utc)))
        self.rules = rules
        self.scorer = scorer or HalfSpaceTreesScorer(config.hst, config.warmup)
        self.threshold = AdaptiveThreshold(
            config.score_threshold,
            config.score_quantile,
            config.score_quantile_window,
            min_samples=config.score_quantile_min_samples,
        )
        self.classifier = FraudClassifier(config.classifier)
        self.classifier_threshold = ThresholdFromLabels(config.calibration)
        self.label_rate = LabelRate()
        #: Whether the rules and Half-Space Trees may still alert alone, judged from labels.
        self.trust = {"rules": PartTrust(config.trust), "half_space_trees": PartTrust(config.trust)}
        #: What amounts are common in each category, from its regular customers' payments.
        self.categories = CategoryProfiles()
        #: The unit every amount that enters a feature is read in (the rules keep the stream's).
        self.unit = AmountUnit(config.amount_unit)

    @property
    def reads_classifier_input(self) -> bool:
        """Whether decisions build the classifier's input (and read the merchant and segment
        statistics it holds): for labels to come, or for a classifier restored ready.

        >>> Detector(DetectorConfig(labels_enabled=False)).reads_classifier_input
        False
        """
        return self.config.labels_enabled or self.classifier.ready

    def process(
        self,
        tx: Transaction,
        history: UserHistory,
        partition: int,
        offset: int,
        now: datetime,
        shared: SharedStats = NO_SHARED_STATS,
    ) -> Decision:
        """Score ``tx``, update ``history`` in place, and decide whether to alert.

        ``shared`` is what is known of the transaction's merchant and amount segment.

        A message the history has already applied (a redelivery after a crash) is scored
        without touching the history or the model; if it alerts, the alert id is the same
        as the first time.
        """
        self.observe_stream((tx,))
        features, view = self.features(tx, history, history.has_applied(partition, offset))
        score = self.scorer.score(view)
        item = RoundItem(tx, history, partition, offset, now)
        decision, learn = self.decide(item, shared, features, score)
        if learn:
            self.scorer.learn(view)
        return decision

    def features(
        self, tx: Transaction, history: UserHistory, redelivered: bool = False
    ) -> tuple[dict[str, float], dict[str, float]]:
        """The behaviour features of ``tx`` against the history before it, and the trees' view.

        Also what the category profile says of the amount (``category_share``,
        ``category_common``, which the user's own habit in the category can also set), and the
        spree counted at the amount's rarity there (:meth:`BehaviourFeatures.lift_spree`); the
        payment then counts there if the user already pays in the category
        (:mod:`fraudstream.core.categories`), unless it is a redelivery. Without a category,
        the merchant's profile stands for it: ``new_merchant`` for ``new_category`` (unless the
        user alerted within :data:`MERCHANT_ALERT_HOLD`), and the payment counts there if its
        amount is ordinary for the user.
        """
        tx = self.in_unit(tx)
        features = self.behaviour.features(history, tx)
        features["amount_unit"] = self.unit.value  # for a default amount threshold (core.rules)
        category, channel, amount = tx.category, tx.channel, tx.amount
        new_category = features["new_category"] > 0.0
        if category or not tx.merchant:
            count = not (redelivered or new_category)
            known = self.categories.share_then_count(category, channel, amount, count)
        else:  # no category: the merchant's payments stand for it (core.categories)
            since_alert = tx.epoch_seconds - history.t_alert
            alerted_lately = history.t_alert > 0.0 and since_alert <= MERCHANT_ALERT_HOLD
            new_category = features["new_merchant"] > 0.0 and not alerted_lately
            count = not redelivered and features["z"] < MERCHANT_ORDINARY_Z
            known = self.categories.merchant_share_then_count(tx.merchant, channel, amount, count)
        share = 0.0 if known is None else known
        line = self.config.common_category_share
        features["category_share"] = share
        common = line > 0.0 and share >= line and new_category
        # or ordinary for the user themselves in the category (core.behaviour)
        usual = features["category_usual"] > 0.0
        features["category_common"] = 1.0 if common or usual else 0.0
        if known is not None:
            self.behaviour.lift_spree(history, tx, features, rarity_z(known))
        return features, hst_view(features)

    def observe_stream(self, transactions: Iterable[Transaction]) -> None:
        """What transactions about to be decided say of the stream: their amounts towards the
        amount unit, their times towards the clock step, each decided once from the first
        ones (:mod:`fraudstream.core.units`, :mod:`fraudstream.core.clock`).

        A worker shows its whole batch before the batch's first round: a round holds one
        transaction per user, so a first batch of 100 whose users repeat has a first round
        under the 100 amounts the unit needs, and that round was read in unit 1 (a stream in
        cents: 22 amount alerts where its own unit gave 3).
        """
        if self.unit.decided and self.clock.decided:
            return  # both for good: nothing to collect
        amounts: list[float] = []
        times: list[float] = []
        for tx in transactions:
            amounts.append(tx.amount)
            times.append(tx.epoch_seconds)
        self.unit.observe(amounts)
        self.clock.observe(times)

    def process_round(
        self,
        items: Sequence[RoundItem],
        shared_stats_of: Callable[[Transaction], SharedStats],
        done: Callable[[int, Decision | Exception], None],
    ) -> None:
        """:meth:`process` for events of distinct users, Half-Space Trees in one batch pass.

        The same decisions as :meth:`process` called on ``items`` in order: an event's
        features depend only on its own user's history, so they are all known before any of
        the round is decided, and the trees score them with the reference masses, which change
        only when a window pivots (:class:`BatchHalfSpaceTrees` splits there, learns the
        events not kept out, and leaves River's model as its own loop would). Each event is
        then decided in order: ``shared_stats_of`` is asked just before, and ``done(i, result)``
        is called right after (the decision, or the exception it raised), so whatever the
        caller updates there is seen by the next event, as in a loop over :meth:`process`.
        The caller shows the stream to :meth:`observe_stream` first (a whole batch at once).
        """
        ready: list[int] = []
        views: list[dict[str, float]] = []
        features: list[dict[str, float]] = []
        for i, item in enumerate(items):
            try:
                redelivered = item.history.has_applied(item.partition, item.offset)
                features_i, view = self.features(item.tx, item.history, redelivered)
            except Exception as exc:  # the caller parks it; the round goes on
                done(i, exc)
                continue
            ready.append(i)
            features.append(features_i)
            views.append(view)
        if not ready:
            return

        reads_shared = self.reads_classifier_input

        def decide(start: int, scores: FloatArray) -> BoolArray:
            learned = np.zeros(len(scores), dtype=bool)
            for j, score in enumerate(scores.tolist()):
                i = ready[start + j]
                item = items[i]
                try:
                    shared = shared_stats_of(item.tx) if reads_shared else NO_SHARED_STATS
                    decision, learn = self.decide(item, shared, features[start + j], score)
                except Exception as exc:  # the caller parks it
                    done(i, exc)
                    continue
                learned[j] = learn
                self.scorer.learned += learn  # before the next event asks warmed_up
                done(i, decision)
            return learned

        rows = [[view[name] for name in HST_FEATURES] for view in views]
        self.scorer.batch().score_and_learn(np.array(rows, dtype=np.float64), decide)

    def decide(
        self,
        item: RoundItem,
        shared: SharedStats,
        features: dict[str, float],
        score: float,
    ) -> tuple[Decision, bool]:
        """All :meth:`process` does once the trees scored ``item``, and whether they learn it.

        Updates the item's history (unless the event is a redelivery); the trees' own learning
        is the caller's, so that a batch can learn in one pass.
        """
        tx, history, partition, offset, now = (
            item.tx,
            item.history,
            item.partition,
            item.offset,
            item.now,
        )
        redelivered = history.has_applied(partition, offset)
        outcome = self.rules.evaluate(tx, history, features)
        reasons = list(outcome.reasons)
        levels = [outcome.levels.get(name, 0.0) for name in RULE_IDS]
        rules = max(outcome.levels.values(), default=0.0)
        parts = {"rules": rules, "half_space_trees": 0.0, "fraud_classifier": 0.0}
        if self.scorer.warmed_up:
            threshold = self.threshold.value
            if self.threshold.ready:
                half = _half_at(score, threshold)
                fired = score >= threshold
                if fired and habit_excess_alone(hst_view(features)):
                    # on the habit-spike rule's own evidence alone, the trees say no more than
                    # its line: alone they drew a lower one (z ~4.2), at precision 0.2 on 6 streams
                    half = min(half, beyond(features["z_habit"], self.config.habit_spike_zscore))
                    fired = half >= 0.5
                parts["half_space_trees"] = half
                if fired:
                    details = {"score": round(score, 4), "threshold": round(threshold, 4)}
                    reasons.append(Reason(ReasonKind.MODEL, ReasonName.HALF_SPACE_TREES, details))
            if not redelivered:
                self.threshold.observe(score)

        # the burst's learning line is the detector's own (FRAUDSTREAM_LEARN_ZSCORE), whatever
        # the rules are; what the deviation rule suspects is the active rule's to say
        burst = burst_zscore(features, history.n >= self.config.deviation_min_history)
        in_unit = self.in_unit(tx)
        values = (
            self.classifier_input(in_unit, features, burst, score, levels, shared)
            if self.reads_classifier_input
            else None
        )
        probability = None
        if self.classifier.ready:
            assert values is not None  # a ready classifier reads its input
            probability = self.classifier_threshold.bounded(
                self.classifier.predict_proba_values(CLASSIFIER_FEATURES, values)
            )
            line = self.classifier_threshold.value
            classifier = parts["fraud_classifier"] = _half_at(probability, line)
            if probability >= line:
                details = {"probability": round(probability, 4), "threshold": round(line, 4)}
                reasons.append(Reason(ReasonKind.MODEL, ReasonName.FRAUD_CLASSIFIER, details))
            # the classifier orders everything; a part firing lifts the event into the alerted
            # half, still ordered by the classifier, while the labels say its alerts are
            # mostly fraud (a part the labels show mostly false no longer lifts anything)
            lifted = any(
                parts[name] >= 0.5 and self.trusts(part) for name, part in self.trust.items()
            )
            risk = 0.5 + 0.5 * classifier if lifted else classifier
        else:
            risk = max(parts.values())
        if outcome.allowed:  # an allow list vouches for it: no rule or model alert
            reasons, risk = [], 0.0
        alerted = risk >= 0.5
        suspicious = (
            alerted
            or burst >= self.config.learn_zscore
            or self.rules.suspects(tx, history, features)
        )

        learn = not redelivered and not suspicious
        if not redelivered:
            self.behaviour.update(
                history,
                in_unit,
                partition,
                offset,
                suspicious,
                alerted,
                features["spree"],
                raw_amount=tx.amount,
            )

        alert = None
        if alerted:
            alert = Alert(alert_id_for(tx), tx, now, score, reasons, features, risk)
        scored_with = NOT_SCORED if probability is None else probability
        hst_fired = 1.0 if parts["half_space_trees"] >= 0.5 else 0.0
        model_input = () if values is None else (*values, scored_with, hst_fired)
        decision = Decision(
            score,
            features,
            alert,
            redelivered,
            risk,
            probability,
            model_input,
            parts,
            outcome.shadow,
            outcome.allowed_by,
        )
        return decision, learn

    def in_unit(self, tx: Transaction) -> Transaction:
        """``tx`` with its amount in the detector's unit (``tx`` itself in unit 1)."""
        if self.unit.value == 1.0:
            return tx
        return dataclasses.replace(tx, amount=self.unit.scale(tx.amount))

    def classifier_input(
        self,
        tx: Transaction,
        features: dict[str, float],
        burst: float,
        hst_score: float,
        rule_levels: list[float],
        shared: SharedStats,
    ) -> tuple[float, ...]:
        """The classifier's view of one transaction: values in :data:`CLASSIFIER_FEATURES` order.

        A tuple, because every transaction's is kept until its label and only a ready
        classifier needs the names (item getters build it at C speed).
        """
        stats = shared.merchant or _NEUTRAL_MERCHANT
        global_rate = self.label_rate.value
        merchant_features = stats.features(tx.epoch_seconds, tx.amount, global_rate)
        log_amount = math.log1p(max(tx.amount, 0.0))
        return (
            *_BEHAVIOUR_VALUES(features),
            *_MERCHANT_VALUES(merchant_features),
            burst,
            hst_score,
            *rule_levels,
            *_hinges(log_amount),
            *_clock_bands(tx.epoch_seconds),
            segment_log_odds(shared.segment, global_rate),
        )

    def trusts(self, part: PartTrust) -> bool:
        """Whether a firing part lifts a transaction into the alerted half.

        While the labels certify the classifier's line they show the coverage they were told
        of, and hold the part to ``min_precision`` (:attr:`PartTrust.trusted`). While they do
        not, they may be too few or cover fewer frauds than the settings say: the part is held
        to ``min_precision`` of the best they show for the classifier
        (:attr:`ThresholdFromLabels.reference`), which falls with the share reported as the
        part's does; before they hold enough frauds to show one, it is not judged.
        """
        line = self.classifier_threshold
        if line.certified:
            return part.trusted
        return part.trusted_against(line.reference)

    def learn_label(
        self,
        model_input: tuple[float, ...],
        fraud: bool,
        event_time: float,
        correction: bool,
        matured: bool = False,
        delay: float | None = None,
    ) -> None:
        """Learn one resolved transaction: its label, or legit once it matured unlabeled.

        ``model_input`` is :data:`CLASSIFIER_FEATURES`, the probability it was scored with
        (which calibrates the alert line) and whether Half-Space Trees fired (which, with the
        rule levels, tells :attr:`trust` how each part did). A part is judged only on what it
        adds: the transactions whose probability was under the classifier's line (or that were
        scored before it was ready), which it alone can have alerted. A ``correction`` is a
        fraud label for a transaction already learned as legit: the classifier learns the fraud
        too, and the label rate trades one legit for one fraud. ``matured``: resolved by the
        maturity horizon, not a label; ``delay``: a fraud label's, seconds of event time (both
        for the alert line, :class:`ThresholdFromLabels`).
        """
        size = len(CLASSIFIER_FEATURES)
        if len(model_input) in (size + 1, size + 2):  # else: from an older version, skip
            beyond_classifier = model_input[size] < self.classifier_threshold.value
            self.classifier.learn_values(CLASSIFIER_FEATURES, model_input[:size], fraud)
            if model_input[size] >= 0.0:
                self.classifier_threshold.observe(
                    model_input[size], fraud, event_time, correction, matured, delay
                )
            if beyond_classifier and max(model_input[_RULE_SLICE]) >= 0.5:
                self.trust["rules"].observe(fraud, event_time, correction)
            hst_fired = len(model_input) == size + 2 and model_input[size + 1] >= 0.5
            if beyond_classifier and hst_fired:
                self.trust["half_space_trees"].observe(fraud, event_time, correction)
        if correction:
            self.label_rate.learn(False, event_time, weight=-1.0)
        self.label_rate.learn(fraud, event_time)

    def model_state(self) -> bytes:
        """The learned state (both models, their thresholds, the label rate) for checkpoints."""
        state = {
            "version": MODEL_STATE_VERSION,
            "hst": self.config.hst,
            "learned": self.scorer.learned,
            "model": self.scorer.model,
            "recent_scores": list(self.threshold.recent),
            "threshold": self.threshold.value,
            "classifier": self.classifier,
            "classifier_threshold": self.classifier_threshold,
            "label_rate": self.label_rate,
            "trust": self.trust,
            # plain values, not instances: the compiled core's classes pickle differently
            "categories": self.categories.to_state(),
            "amount_unit": self.unit.exponent,
            "timestamp_step": self.clock.seconds,
            "scale_evidence": (self.behaviour.scale.mean, self.behaviour.scale.count),
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
        line: ThresholdFromLabels = state["classifier_threshold"]
        if _same_calibration(line, self.config.calibration):  # else: recalibrate
            self.classifier_threshold = line
        self.label_rate = state["label_rate"]
        if isinstance(trust := state.get("trust"), dict) and set(trust) == set(self.trust):
            self.trust = trust  # absent from checkpoints written before it existed
            for part in trust.values():  # the judgement is restored, its line is the settings'
                part.params = self.config.trust
        # absent from checkpoints written before they existed; instances of our own classes
        # (older checkpoints) load only into the same build, compiled or pure
        if (categories := _categories(state.get("categories"))) is not None:
            self.categories = categories
        self.unit.restore(state.get("amount_unit", 0))  # older checkpoints learned in unit 1
        self.clock.restore(state.get("timestamp_step", 0))  # and read timestamps as exact
        if (scale := _scale_evidence(state.get("scale_evidence"))) is not None:
            self.behaviour.scale.mean, self.behaviour.scale.count = scale
            self.behaviour.scale.refresh()
        self.scorer.model = state["model"]
        self.scorer.learned = state["learned"]
        self.threshold.recent.clear()
        self.threshold.recent.extend(state["recent_scores"])
        self.threshold.value = state["threshold"]
        return None


def _categories(saved: object) -> CategoryProfiles | None:
    """The category profiles a checkpoint kept, or None if it kept none this build can read."""
    try:
        if isinstance(saved, CategoryProfiles):  # an older checkpoint's instance
            saved = saved.to_state()  # reads every attribute: one of another build has none
        if isinstance(saved, tuple):
            return CategoryProfiles.from_state(saved)
    except (AttributeError, TypeError, ValueError):
        pass
    return None


def _scale_evidence(saved: object) -> tuple[float, int] | None:
    """The stream's scale evidence (mean, count) a checkpoint kept, or None if none readable."""
    try:
        if isinstance(saved, tuple):
            mean, count = saved
            return float(mean), int(count)
        if isinstance(saved, ScaleEvidence):
            return float(saved.mean), int(saved.count)
    except (AttributeError, TypeError, ValueError):
        pass
    return None


def _same_calibration(line: ThresholdFromLabels, params: CalibrationParams) -> bool:
    """Whether a restored alert line was calibrated under ``params`` (one from a version whose
    parameters had other fields, such as no event-time horizon, was not)."""
    try:
        return line.params == params
    except AttributeError:  # unpickled parameters missing a field added since
        return False


def _floor6(value: float) -> float:
    """``value`` cut to 6 decimals, rounded down so that nothing under the alert line (0.5)
    reads as on it: a probability held just under an uncalibrated line of 1 scored 0.4999999,
    which ``round`` made 0.5, and evaluate's ablation counted 4 such non-alerts as alerts.

    >>> _floor6(0.49999995), _floor6(0.5), _floor6(0.1234567)
    (0.499999, 0.5, 0.123456)
    """
    return math.floor(value * 1_000_000) / 1_000_000


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
