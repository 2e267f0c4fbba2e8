"""The detection core end to end on plain data: reasons, warm-up, learning, redelivery."""

from __future__ import annotations

import io
import itertools
import math
import pickle
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from fraudstream import native
from fraudstream.core import behaviour, categories
from fraudstream.core.behaviour import UserHistory, hst_view
from fraudstream.core.categories import MERCHANT_MIN_COUNT, MERCHANT_ORDINARY_Z
from fraudstream.core.detector import (
    AMOUNT_HINGES,
    CLASSIFIER_FEATURES,
    NO_SHARED_STATS,
    NOT_SCORED,
    RULE_FEATURES,
    Decision,
    Detector,
    DetectorConfig,
    RoundItem,
    SharedStats,
)
from fraudstream.core.merchants import MerchantStats
from fraudstream.core.model import HSTParams
from fraudstream.core.records import Transaction
from fraudstream.core.rule_definitions import RuleSet, seed_definitions
from fraudstream.core.supervised import (
    CalibrationParams,
    ClassifierParams,
    ThresholdFromLabels,
    TrustParams,
)

T0 = datetime(2024, 12, 4, tzinfo=timezone.utc)
SMALL = DetectorConfig(hst=HSTParams(window_size=100), warmup=100, score_quantile=None)


def tx(
    i: int,
    amount: float,
    user: str = "u1",
    extra: dict[str, Any] | None = None,
    step: timedelta = timedelta(hours=1),
) -> Transaction:
    extra = extra or {}
    when = T0 + step * i
    merchant, country = extra.get("merchantId"), extra.get("country")
    category = extra.get("category")
    return Transaction(
        f"t{i}", user, amount, when, extra, merchant=merchant, country=country, category=category
    )


def test_rule_alone_raises_an_alert_with_only_the_rule_reason() -> None:
    detector = Detector(SMALL)
    decision = detector.process(tx(0, 15000), UserHistory(), 0, 0, T0)
    assert decision.alert is not None
    assert decision.alert.reason_names == ["amount_threshold"]


def test_no_model_alert_during_warm_up_even_for_extreme_scores() -> None:
    detector = Detector(
        DetectorConfig(hst=HSTParams(window_size=100), warmup=100, score_threshold=0.0)
    )
    profile = UserHistory()
    for i in range(99):
        decision = detector.process(tx(i, 50 + i % 7), profile, 0, i, T0)
        assert decision.alert is None, i
    assert not detector.scorer.warmed_up


def test_model_flags_a_habit_spike_after_warm_up() -> None:
    rng = random.Random(3)
    detector = Detector(SMALL)
    profiles: dict[str, UserHistory] = {}
    for i in range(800):
        user = f"u{i % 40}"
        profile = profiles.setdefault(user, UserHistory())
        amount = 30 * rng.lognormvariate(0, 0.3)
        detector.process(tx(i, amount, user), profile, 0, i, T0)
    decision = detector.process(tx(800, 3000, "u0"), profiles["u0"], 0, 800, T0)
    assert decision.alert is not None
    assert "half_space_trees" in decision.alert.reason_names
    model_reason = decision.alert.to_dict()["reasons"][
        decision.alert.reason_names.index("half_space_trees")
    ]
    assert model_reason["score"] >= model_reason["threshold"]


def test_habit_spike_rule_fires_with_its_zscore_before_the_model_is_warm() -> None:
    detector = Detector(SMALL)
    profile = UserHistory()
    for i, amount in enumerate([20.0, 25.0, 18.0, 22.0, 30.0]):
        detector.process(tx(i, amount), profile, 0, i, T0)
    decision = detector.process(tx(5, 2000.0), profile, 0, 5, T0)
    assert decision.alert is not None
    assert decision.alert.reason_names == ["habit_spike"]
    reason = decision.alert.reasons[0].to_dict()
    assert reason["zscore"] >= reason["threshold"] == SMALL.habit_spike_zscore


def test_unfamiliar_place_rule_names_the_new_country_and_merchant() -> None:
    detector = Detector(SMALL)
    profile = UserHistory()
    home = {"merchantId": "M1", "country": "DE"}
    for i, amount in enumerate([20.0, 25.0, 18.0, 22.0, 30.0]):
        detector.process(tx(i, amount, extra=home), profile, 0, i, T0)
    away = {"merchantId": "M9", "country": "NG"}
    decision = detector.process(tx(5, 150.0, extra=away), profile, 0, 5, T0)
    assert decision.alert is not None
    assert decision.alert.reason_names == ["unfamiliar_place"]
    reason = decision.alert.reasons[0].to_dict()
    assert (reason["newCountry"], reason["newMerchant"]) == ("NG", "M9")
    assert reason["zscore"] >= reason["threshold"]
    usual = detector.process(tx(6, 22.0, extra=home), profile, 0, 6, T0)
    assert usual.alert is None


def test_every_reason_that_fired_is_listed() -> None:
    detector = Detector(
        DetectorConfig(
            hst=HSTParams(window_size=10), warmup=10, score_threshold=0.0, score_quantile=None
        )
    )
    profile = UserHistory()
    for i in range(10):
        detector.process(tx(i, 20), profile, 0, i, T0)
    decision = detector.process(tx(10, 20000), profile, 0, 10, T0)
    assert decision.alert is not None
    assert decision.alert.reason_names == [
        "amount_threshold",
        "habit_spike",
        "user_deviation",
        "half_space_trees",
    ]


def test_alerted_events_are_not_learned() -> None:
    detector = Detector(SMALL)
    detector.process(tx(0, 15000), UserHistory(), 0, 0, T0)
    assert detector.scorer.learned == 0
    detector.process(tx(1, 15), UserHistory(), 0, 1, T0)
    assert detector.scorer.learned == 1


def test_without_labels_decisions_skip_the_classifiers_input_and_decide_the_same() -> None:
    unlabeled = Detector(replace(SMALL, labels_enabled=False))
    labeled = Detector(SMALL)
    asked: list[str] = []

    def shared(t: Transaction) -> SharedStats:
        asked.append(t.transaction_id)
        return NO_SHARED_STATS

    def decide(detector: Detector) -> list[Decision]:
        profile, results = UserHistory(), []
        for i, amount in enumerate([20, 25, 22, 15000, 21]):
            item = RoundItem(tx(i, amount, extra={"merchantId": "M1"}), profile, 0, i, T0)
            detector.process_round([item], shared, lambda _, result: results.append(result))
        return [result for result in results if isinstance(result, Decision)]

    for detector in (unlabeled, labeled):
        decisions = decide(detector)
        if detector is unlabeled:
            assert asked == [] and all(d.model_input == () for d in decisions)
            without = [(d.risk, d.alert is not None, d.features) for d in decisions]
        else:
            assert len(asked) == 5 and all(d.model_input for d in decisions)
            assert [(d.risk, d.alert is not None, d.features) for d in decisions] == without


def test_a_classifier_restored_ready_reads_its_input_even_without_labels() -> None:
    ready_early = ClassifierParams(min_frauds=1, min_legit=1)
    detector = Detector(replace(SMALL, labels_enabled=False, classifier=ready_early))
    assert not detector.reads_classifier_input
    zeros = (0.0,) * len(CLASSIFIER_FEATURES)
    detector.classifier.learn_values(CLASSIFIER_FEATURES, zeros, True)
    detector.classifier.learn_values(CLASSIFIER_FEATURES, zeros, False)
    assert detector.reads_classifier_input
    decision = detector.process(tx(0, 20), UserHistory(), 0, 0, T0)
    assert decision.probability is not None and len(decision.model_input) > 0


def test_redelivered_message_changes_nothing_and_keeps_its_alert_id() -> None:
    detector = Detector(SMALL)
    profile = UserHistory()
    detector.process(tx(0, 20, extra={"merchantId": "M1", "country": "DE"}), profile, 3, 6, T0)
    first = detector.process(tx(1, 15000, extra={"country": "FR"}), profile, 3, 7, T0)
    snapshot = profile.encode()
    late = T0 + timedelta(seconds=5)
    again = detector.process(tx(1, 15000, extra={"country": "FR"}), profile, 3, 7, late)
    assert again.redelivered and not first.redelivered
    assert profile.encode() == snapshot
    assert len(profile.recent_times) == 2  # the velocity rules' memory is not doubled either
    assert first.alert is not None and again.alert is not None
    assert again.alert.alert_id == first.alert.alert_id


def test_adaptive_threshold_must_calibrate_before_the_model_alerts() -> None:
    config = DetectorConfig(
        hst=HSTParams(window_size=50),
        warmup=50,
        score_threshold=0.0,
        score_quantile=0.99,
        score_quantile_min_samples=100,
    )
    detector = Detector(config)
    profile = UserHistory()
    alerts = [
        detector.process(tx(i, 20 + i % 5), profile, 0, i, T0).alert is not None for i in range(150)
    ]
    assert not any(alerts), "model alerted before its threshold had seen enough scores"
    assert detector.threshold.ready


def trained_detector(events: int = 300) -> Detector:
    detector = Detector(SMALL)
    profile = UserHistory()
    for i in range(events):
        detector.process(tx(i, 20 + i % 9), profile, 0, i, T0)
    return detector


def test_restored_model_state_scores_exactly_like_the_original() -> None:
    original = trained_detector()
    restored = Detector(SMALL)
    assert restored.restore_model_state(original.model_state()) is None
    assert restored.scorer.learned == original.scorer.learned
    assert restored.scorer.warmed_up
    assert list(restored.threshold.recent) == list(original.threshold.recent)
    probe = {"habit_up": 0.6, "habit_down_w": 0.0, "velocity": 0.3, "new_country": 0.0}
    assert restored.scorer.score(probe) == original.scorer.score(probe)


def test_the_amount_unit_is_kept_in_the_checkpoint() -> None:
    """A history learned in one unit is not comparable with amounts in another: a restarted
    worker reads amounts in the unit its checkpoint learned in, whatever its first batch says."""
    original = Detector(SMALL)
    history = UserHistory()
    for i in range(120):
        original.process(tx(i, 2_000.0 + 40 * (i % 9)), history, 0, i, T0)
    assert original.unit.value == 100.0
    restored = Detector(SMALL)
    assert restored.restore_model_state(original.model_state()) is None
    restored.process(tx(200, 0.3), UserHistory(), 0, 200, T0)
    assert restored.unit.value == 100.0


def test_the_rules_read_the_streams_own_unit_and_the_features_the_detectors() -> None:
    """Amounts in hundreds: the features read 47 where the stream says 0.47, but the amount
    threshold and the recent payments the velocity rules sum stay what the stream says."""
    detector = Detector(replace(SMALL, amount_unit=0.01, amount_threshold=100.0))
    history = UserHistory()
    decision = detector.process(tx(0, 0.47), history, 0, 0, T0)
    assert decision.features["log_amount"] == pytest.approx(math.log1p(47.0))
    assert decision.alert is None and history.recent_amounts == [0.47]
    big = detector.process(tx(1, 150.0), history, 0, 1, T0)
    assert big.alert is not None and "amount_threshold" in big.alert.reason_names


def test_half_space_trees_alone_do_not_undercut_the_habit_spike_line_on_its_own_evidence() -> None:
    """An amount above habit and nothing else unusual: the trees score it past their threshold,
    but below the habit-spike rule's z-score they say no more than that rule (no alert); the
    same amount seconds after another payment is the trees' own evidence and alerts."""

    def trained() -> tuple[Detector, UserHistory]:
        detector, profile = Detector(replace(SMALL, timestamp_step=0.0)), UserHistory()
        for i in range(300):
            detector.process(tx(i, 20 + i % 9), profile, 0, i, T0)
        return detector, profile

    at = T0 + timedelta(hours=300)
    detector, profile = trained()
    alone = detector.process(Transaction("a", "u1", 40.0, at), profile, 0, 300, T0)
    assert alone.score >= detector.threshold.value
    assert 4.0 < alone.features["z_habit"] < SMALL.habit_spike_zscore
    assert alone.alert is None and alone.parts["half_space_trees"] < 0.5
    detector, profile = trained()
    detector.process(Transaction("a", "u1", 24.0, at), profile, 0, 300, T0)
    quick = at + timedelta(seconds=5)
    burst = detector.process(Transaction("b", "u1", 40.0, quick), profile, 0, 301, T0)
    assert burst.alert is not None and "half_space_trees" in burst.alert.reason_names


def test_the_clock_step_is_kept_in_the_checkpoint() -> None:
    original = Detector(SMALL)
    history = UserHistory()
    for i in range(120):
        original.process(tx(i, 20.0 + i % 7), history, 0, i, T0)  # stamped on the hour
    assert original.clock.seconds == 3600
    restored = Detector(SMALL)
    assert restored.restore_model_state(original.model_state()) is None
    restored.process(tx(200, 20.0, step=timedelta(seconds=1.5)), UserHistory(), 0, 200, T0)
    assert (restored.clock.seconds, restored.behaviour.clock.min_gap) == (3600, 1200.0)


def test_payments_of_a_user_within_one_step_of_a_coarse_clock_are_no_burst() -> None:
    """Stamped to the hour, two payments in the same hour are read a third of an hour apart:
    the 30-second velocity Half-Space Trees sees stays ~0 instead of counting a burst."""
    stepped, exact = Detector(SMALL), Detector(replace(SMALL, timestamp_step=0.0))
    for detector in (stepped, exact):
        for i in range(120):  # other users' payments decide the step
            detector.process(tx(i, 20.0, user=f"o{i}"), UserHistory(), 0, i, T0)
    seconds = [d.clock.seconds for d in (stepped, exact)]
    assert seconds == [3600, 0]
    velocity = []
    for detector in (stepped, exact):
        history = UserHistory()
        detector.process(tx(200, 20.0), history, 0, 200, T0)
        same_hour = detector.process(tx(200, 21.0), history, 0, 201, T0)
        velocity.append(same_hour.features["velocity"])
    assert velocity[0] < 1e-10 and velocity[1] == pytest.approx(1.0)


def test_the_default_amount_threshold_is_ten_thousand_of_the_streams_unit() -> None:
    """Amounts in cents: once the unit is decided, 500.00 (50,000) is an ordinary payment and
    only what is over 10,000.00 (1,000,000) crosses the default line; a threshold set in the
    settings stays in the stream's amounts."""
    detector, history = Detector(SMALL), UserHistory()
    for i in range(120):
        detector.process(tx(i, 2_000.0 + 40 * (i % 9)), history, 0, i, T0)
    assert detector.unit.value == 100.0
    ordinary = detector.process(tx(120, 50_000.0, user="u2"), UserHistory(), 0, 120, T0)
    assert ordinary.alert is None or "amount_threshold" not in ordinary.alert.reason_names
    big = detector.process(tx(121, 1_500_000.0, user="u3"), UserHistory(), 0, 121, T0)
    assert big.alert is not None and "amount_threshold" in big.alert.reason_names
    [reason] = [r for r in big.alert.to_dict()["reasons"] if r["name"] == "amount_threshold"]
    assert reason["threshold"] == 1_000_000.0
    set_in_cents = Detector(replace(SMALL, amount_threshold=10_000.0))
    set_in_cents.unit.observe([2_000.0] * 100)
    seen = set_in_cents.process(tx(0, 50_000.0, user="u2"), UserHistory(), 0, 0, T0)
    assert seen.alert is not None and "amount_threshold" in seen.alert.reason_names


def test_the_streams_scale_evidence_is_kept_in_the_checkpoint() -> None:
    original = trained_detector()
    original.behaviour.scale.refresh()
    assert original.behaviour.scale.count > 0
    restored = Detector(SMALL)
    assert restored.restore_model_state(original.model_state()) is None
    scale, kept = original.behaviour.scale, restored.behaviour.scale
    assert (kept.mean, kept.count, kept.prior) == (scale.mean, scale.count, scale.prior)


def test_the_category_profiles_are_kept_in_the_checkpoint() -> None:
    original = Detector(SMALL)
    for i in range(50):
        original.categories.observe("travel", "online", 40.0 + i)
    restored = Detector(SMALL)
    assert restored.restore_model_state(original.model_state()) is None
    assert restored.categories == original.categories


def test_a_checkpoint_names_no_class_the_native_build_compiles() -> None:
    """A pickled instance of a class mypyc compiled does not load into the pure class, nor back
    (a pure worker's checkpoint crashed the image's worker at restore): checkpoints carry
    plain values for those, so one written by either build restores into the other."""
    found: list[str] = []

    class Recording(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            found.append(module)
            return super().find_class(module, name)

    Recording(io.BytesIO(trained_detector().model_state())).load()
    compiled = {"fraudstream." + m.removesuffix(".py").replace("/", ".") for m in native.MODULES}
    assert "fraudstream.core.supervised" in found  # the classifier is pickled: the test reads
    assert compiled.isdisjoint(found)


def test_a_checkpoint_holding_the_instances_older_versions_pickled_still_restores() -> None:
    original = trained_detector()
    for i in range(50):
        original.categories.observe("travel", "online", 40.0 + i)
    state = pickle.loads(original.model_state())
    state["categories"], state["scale_evidence"] = original.categories, original.behaviour.scale
    restored = Detector(SMALL)
    assert restored.restore_model_state(pickle.dumps(state)) is None
    assert restored.categories == original.categories
    assert restored.behaviour.scale.count == original.behaviour.scale.count > 0


def test_checkpoint_with_other_model_parameters_is_refused() -> None:
    other = Detector(DetectorConfig(hst=HSTParams(window_size=100, height=6), warmup=100))
    reason = other.restore_model_state(trained_detector(10).model_state())
    assert reason is not None and "HST" in reason
    assert other.scorer.learned == 0


def test_corrupt_checkpoint_is_refused_not_raised() -> None:
    assert Detector(SMALL).restore_model_state(b"\x80\x05garbage") is not None


def test_a_user_deviation_alert_says_which_part_fired() -> None:
    detector = Detector(SMALL)
    profile = UserHistory()
    for i in range(20):
        detector.process(tx(i, 100.0 + (i % 5) * 5, step=timedelta(days=1)), profile, 0, i, T0)
    decision = detector.process(tx(20, 400.0, step=timedelta(days=1)), profile, 0, 20, T0)
    assert decision.alert is not None and "user_deviation" in decision.alert.reason_names
    reason = decision.alert.to_dict()["reasons"][
        decision.alert.reason_names.index("user_deviation")
    ]
    assert reason["part"] == "amount" and reason["zscore"] >= reason["threshold"]
    assert decision.risk >= 0.5 and decision.parts["rules"] >= 0.5


def test_after_an_ended_burst_a_payment_over_the_lowered_line_is_not_alerted_nor_learned() -> None:
    detector = Detector(SMALL)
    profile = UserHistory()
    day = timedelta(days=1)
    for i in range(20):
        detector.process(tx(i, 100.0 + (i % 5) * 5, step=day), profile, 0, i, T0)
    assert detector.process(tx(20, 400.0, step=day), profile, 0, 20, T0).alert is not None
    learned = profile.n
    later = detector.process(tx(25, 200.0, step=day), profile, 0, 25, T0)  # 5 days on
    assert later.features["z"] >= 3.0 and later.alert is None
    assert profile.n == learned and profile.t_suspect == tx(25, 0.0, step=day).epoch_seconds
    again = detector.process(tx(26, 200.0, step=day), profile, 0, 26, T0)  # held from it
    assert again.alert is not None and "user_deviation" in again.alert.reason_names


def test_a_deviation_rule_changed_at_run_time_decides_what_is_kept_out_of_learning() -> None:
    """The rule in force says what it suspects, not the settings the detector started with:
    with the lowered line raised to 4 by a new version, the same payment 5 days after the
    burst is ordinary again: learned, and no newer suspect."""
    detector = Detector(SMALL)
    seeded = detector.rules.get("user_deviation")
    assert seeded is not None
    kind = seeded.kind.model_copy(update={"zscore_after_alert": 4.0})
    assert detector.rules.apply(seeded.model_copy(update={"version": 2, "kind": kind})).accepted
    profile = UserHistory()
    day = timedelta(days=1)
    for i in range(20):
        detector.process(tx(i, 100.0 + (i % 5) * 5, step=day), profile, 0, i, T0)
    assert detector.process(tx(20, 400.0, step=day), profile, 0, 20, T0).alert is not None
    learned, suspected = profile.n, profile.t_suspect
    later = detector.process(tx(25, 200.0, step=day), profile, 0, 25, T0)  # 5 days on
    assert 3.0 <= later.features["z"] < 4.0 and later.alert is None
    assert profile.n == learned + 1 and profile.t_suspect == suspected


def test_risk_and_alert_agree_the_alert_carries_the_risk_and_parts_are_named() -> None:
    detector = Detector(SMALL)
    profile = UserHistory()
    for i in range(300):
        decision = detector.process(
            tx(i, 20 + i % 9 + (15000 if i % 50 == 49 else 0)), profile, 0, i, T0
        )
        assert set(decision.parts) == {"rules", "half_space_trees", "fraud_classifier"}
        assert (decision.alert is not None) == (decision.risk >= 0.5), i
        assert decision.alert is None or decision.alert.risk == decision.risk, i


def test_pending_input_carries_the_probability_it_was_scored_with() -> None:
    detector = Detector(SMALL)
    decision = detector.process(tx(0, 20), UserHistory(), 0, 0, T0)
    size = len(CLASSIFIER_FEATURES)
    assert len(decision.model_input) == size + 2  # features, probability, Half-Space Trees fired
    assert decision.model_input[size] == NOT_SCORED and decision.probability is None
    assert decision.model_input[size + 1] == 0.0


def test_every_classifier_feature_has_its_own_name() -> None:
    """The classifier sees a dict: two features under one name would silently be one."""
    assert len(set(CLASSIFIER_FEATURES)) == len(CLASSIFIER_FEATURES)


def test_the_classifier_sees_the_amount_segments_label_risk_and_the_clock() -> None:
    risky = MerchantStats()
    for day in range(20):
        risky.learn_label(fraud=day % 2 == 0, event_time=day * 86400.0)
    segment = CLASSIFIER_FEATURES.index("segment_risk")
    seen = {}
    for name, shared in (("unknown", NO_SHARED_STATS), ("risky", SharedStats(segment=risky))):
        decision = Detector(SMALL).process(tx(1, 300.0), UserHistory(), 0, 0, T0, shared)
        seen[name] = decision.model_input[segment]
    assert seen["unknown"] == pytest.approx(math.log(0.01 / 0.99), abs=0.01)  # the prior rate
    # half its resolved transactions were fraud: 0.37 after decay and the prior's pull
    assert seen["risky"] == pytest.approx(math.log(0.37 / 0.63), abs=0.02)
    values = dict(zip(CLASSIFIER_FEATURES, decision.model_input, strict=False))
    assert values["hour_00_03"] == 1.0 and values["weekend"] == 0.0  # Wednesday 01:00 UTC


def test_the_amount_hinges_let_a_step_in_the_amount_fall_within_20_percent_of_one() -> None:
    edges = sorted(AMOUNT_HINGES)
    assert edges[0] <= 1.0 and edges[-1] >= 30_000.0, "every plausible card amount"
    assert all(high / low <= 1.42 for low, high in itertools.pairwise(edges))


def test_a_ready_classifier_raises_no_alert_of_its_own_until_labels_calibrated_its_line() -> None:
    """Learning online, an uncalibrated classifier's probabilities swing with the order labels
    come in: by default it ranks, and alerts only once the labels have set its line."""
    config = DetectorConfig(
        hst=HSTParams(window_size=50),
        warmup=50,
        classifier=ClassifierParams(min_frauds=5, min_legit=20),
    )
    detector = Detector(config)
    profile = UserHistory()
    for i in range(60):
        decision = detector.process(tx(i, 20.0 + 5000.0 * (i % 6 == 0)), profile, 0, i, T0)
        detector.learn_label(decision.model_input, i % 6 == 0, decision.score, False)
    assert detector.classifier.ready and detector.classifier_threshold.value == 1.0
    high = detector.process(tx(100, 5020.0, "u9"), UserHistory(), 0, 100, T0)
    assert high.probability is not None and high.probability > 0.5, "it has learned"
    assert high.alert is None or "fraud_classifier" not in high.alert.reason_names


def ready_detector(initial: float = 0.9, coverage: float = 1.0, fallback: float = 0.5) -> Detector:
    calibration = CalibrationParams(
        initial=initial, min_hits=2, refresh=10, coverage=coverage, fallback_precision=fallback
    )
    config = DetectorConfig(
        hst=HSTParams(window_size=50),
        warmup=50,
        classifier=ClassifierParams(min_frauds=5, min_legit=20),
        calibration=calibration,
        trust=TrustParams(coverage=coverage),
    )
    detector = Detector(config)
    profile = UserHistory()
    for i in range(60):
        decision = detector.process(tx(i, 20.0 + i % 3), profile, 0, i, T0)
        detector.learn_label(decision.model_input, i % 6 == 0, decision.score, False)
    assert detector.classifier.ready
    return detector


def test_once_the_classifier_is_ready_a_rule_lifts_its_value_into_the_alerted_half() -> None:
    detector = ready_detector()
    profile = UserHistory()
    ordinary = detector.process(tx(100, 20.0, "u9"), profile, 0, 100, T0)
    c = ordinary.parts["fraud_classifier"]
    assert ordinary.probability is not None and ordinary.risk == c
    big = detector.process(tx(101, 15000.0, "u9"), profile, 0, 101, T0)
    assert big.risk == 0.5 + 0.5 * big.parts["fraud_classifier"]
    assert big.alert is not None and "amount_threshold" in big.alert.reason_names
    assert orjson.loads(big.alert.to_json())["risk"] == round(big.risk, 4) < 1.0
    assert big.model_input[len(CLASSIFIER_FEATURES)] == big.probability


def certify_line(detector: Detector, reported_every: int = 1) -> None:
    """Labels show the classifier's alerts at 0.99 were fraud (every ``reported_every``-th
    one reported) and those at 0.95 not: they set its line at 0.99."""
    line = detector.classifier_threshold
    for i in range(8):
        line.observe(0.99, i % reported_every == 0, 0.0)
    for _ in range(12):
        line.observe(0.95, False, 0.0)
    assert detector.classifier_threshold.certified
    assert detector.classifier_threshold.value == 0.99


def test_a_part_whose_alerts_the_labels_show_mostly_false_no_longer_lifts() -> None:
    detector = ready_detector()
    certify_line(detector)
    for i in range(40):  # 40 of its alerts under the classifier's line resolved, 4 of them fraud
        detector.trust["rules"].observe(i % 10 == 0, 0.0)  # (which of them: the test below)
    assert not detector.trusts(detector.trust["rules"])
    assert detector.trusts(detector.trust["half_space_trees"])
    assert detector.classifier_threshold.certified
    big = detector.process(tx(101, 15000.0, "u9"), UserHistory(), 0, 101, T0)
    assert big.parts["rules"] >= 0.5  # the rule fired, but on its own it no longer alerts
    assert big.risk == big.parts["fraud_classifier"] < 0.5 and big.alert is None
    restored = Detector(detector.config)
    assert restored.restore_model_state(detector.model_state()) is None
    assert not restored.trusts(restored.trust["rules"])


def fresh_line(detector: Detector) -> Detector:
    """The detector with its alert line as before any label (the classifier stays ready)."""
    detector.classifier_threshold = ThresholdFromLabels(detector.config.calibration)
    return detector


def classifier_alerts_half_reported(detector: Detector) -> None:
    """40 high probabilities, each one fraud, every other one reported: the best precision
    the labels show for the classifier is 2 of its first 3 (``min_hits`` is 2)."""
    size = len(CLASSIFIER_FEATURES)
    for i in range(40):
        detector.learn_label((0.0,) * size + (0.99 - i * 1e-4, 0.0), i % 2 == 0, 0.0, False)


def rule_alerts(detector: Detector, reported: int) -> None:
    """40 resolved alerts only the rule raised, ``reported`` in each ten of them fraud."""
    size = len(CLASSIFIER_FEATURES)
    rule_fired = [0.0] * size
    rule_fired[CLASSIFIER_FEATURES.index(RULE_FEATURES[0])] = 1.0
    for i in range(40):
        detector.learn_label((*rule_fired, 0.1, 0.0), i % 10 < reported, 0.0, False)


def test_half_reported_labels_judge_a_part_against_what_they_show_for_the_classifier() -> None:
    """Half the frauds never reported, and the settings saying all are: the classifier's own
    alerts cannot show 0.9 and its line stays at 1 (its fallback asked for 0.9 too, so that
    what alerts is the rule). Judged against them (2/3 at best) rather than a fixed 0.5, a rule
    whose alerts show 0.4 (true ~0.8) still alerts; one whose alerts show 0.1 does not."""
    kept = fresh_line(ready_detector(fallback=0.9))
    classifier_alerts_half_reported(kept)
    rule_alerts(kept, reported=4)
    line = kept.classifier_threshold
    assert line.value == 1.0 and not line.certified and round(line.reference, 3) == 0.667
    assert kept.trusts(kept.trust["rules"])
    big = kept.process(tx(101, 15000.0, "u9"), UserHistory(), 0, 101, T0)
    assert big.alert is not None and "amount_threshold" in big.alert.reason_names
    assert big.risk == 0.5 + 0.5 * big.parts["fraud_classifier"]
    muted = fresh_line(ready_detector(fallback=0.9))
    classifier_alerts_half_reported(muted)
    rule_alerts(muted, reported=1)
    assert not muted.trusts(muted.trust["rules"])
    quiet = muted.process(tx(101, 15000.0, "u9"), UserHistory(), 0, 101, T0)
    assert quiet.alert is None and quiet.parts["rules"] >= 0.5


def test_labels_too_few_to_rank_the_classifier_do_not_judge_a_part() -> None:
    """One reported fraud among the classifier's probabilities, under ``min_hits``: there is no
    reference, and a rule with 40 false alerts resolved still alerts as without labels."""
    detector = Detector(ready_detector().config)  # its labels: only those below
    size = len(CLASSIFIER_FEATURES)
    detector.learn_label((0.0,) * size + (0.99, 0.0), True, 0.0, False)
    rule_alerts(detector, reported=0)
    assert detector.classifier_threshold.reference == 0.0
    assert detector.trust["rules"].resolved == 40 and detector.trusts(detector.trust["rules"])


def test_a_coverage_setting_lets_half_reported_labels_certify_the_line_and_judge_a_part() -> None:
    """Told that half the frauds are reported, the same labels set the classifier's line at its
    alerts (0.5 reported is 0.45 asked), and, the line certified, hold the rule to 0.5 of that
    coverage: its alerts a fifth reported as fraud (0.2 < 0.25) no longer lift; 0.3 would."""
    detector = ready_detector(coverage=0.5)
    certify_line(detector, reported_every=2)
    assert detector.classifier_threshold.certified and detector.classifier_threshold.value == 0.99
    rule_alerts(detector, reported=2)
    assert round(detector.trust["rules"].precision, 2) == 0.2
    assert not detector.trusts(detector.trust["rules"])
    kept = ready_detector(coverage=0.5)
    certify_line(kept, reported_every=2)
    rule_alerts(kept, reported=3)
    assert round(kept.trust["rules"].precision, 2) == 0.3 and kept.trusts(kept.trust["rules"])


def test_a_part_is_judged_only_on_the_alerts_the_classifier_did_not_raise_itself() -> None:
    detector = ready_detector()
    size = len(CLASSIFIER_FEATURES)
    rule_fired = [0.0] * size
    rule_fired[CLASSIFIER_FEATURES.index(RULE_FEATURES[0])] = 1.0
    for _ in range(30):  # the classifier's own alerts at 0.99 were fraud: its line is there
        detector.learn_label((0.0,) * size + (0.99, 0.0), True, 0.0, False)
    assert detector.classifier_threshold.value <= 0.99
    for i in range(40):  # false alerts of the rule, but the classifier was over its line too
        detector.learn_label((*rule_fired, 0.99, 0.0), False, float(i), False)
        for _ in range(10):  # what keeps the classifier's line at 0.99
            detector.learn_label((0.0,) * size + (0.99, 0.0), True, float(i), False)
    assert detector.classifier_threshold.value <= 0.99
    assert detector.trust["rules"].resolved == 0 and detector.trusts(detector.trust["rules"])
    for i in range(40):  # under the classifier's line: alerts only the rule raised, 4 fraud
        detector.learn_label((*rule_fired, 0.1, 0.0), i % 10 == 0, 40.0 + i, False)
    assert detector.trust["rules"].resolved == 40
    assert not detector.trusts(detector.trust["rules"])


def test_a_classifier_whose_labelled_alerts_are_mostly_false_does_not_alert_alone() -> None:
    detector = ready_detector(initial=0.9)
    size = len(CLASSIFIER_FEATURES)
    for i in range(10):  # its high probabilities were frauds a quarter of the time: under the
        detector.learn_label((0.0,) * size + (0.95, 0.0), i % 4 == 0, 0.0, False)  # half
    assert detector.classifier_threshold.value == 1.0  # the parts are held to, at any depth


def test_a_saturated_probability_passes_no_line_before_the_labels_set_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """float64 rounds a saturated logistic to exactly 1.0. Before the labels have calibrated
    the line, that must not pass the initial line at 1 (no alert of its own yet); once they
    have, and saw its best alerts mostly false (the line at 1), what the classifier is surest
    of still does."""
    detector = fresh_line(ready_detector(initial=1.0))
    monkeypatch.setattr(detector.classifier, "predict_proba_values", lambda names, values: 1.0)
    early = detector.process(tx(100, 20.0, "u9"), UserHistory(), 0, 100, T0)
    assert early.probability is not None and early.probability < 1.0
    assert early.alert is None and early.risk < 0.5
    size = len(CLASSIFIER_FEATURES)
    for i in range(10):  # its alerts at 0.95 a quarter fraud: calibrated, the line stays at 1
        detector.learn_label((0.0,) * size + (0.95, 0.0), i % 4 == 0, 0.0, False)
    line = detector.classifier_threshold
    assert line.calibrated and line.value == 1.0 and not line.certified
    sure = detector.process(tx(101, 20.0, "u9"), UserHistory(), 0, 101, T0)
    assert sure.probability == 1.0
    assert sure.alert is not None and "fraud_classifier" in sure.alert.reason_names


def test_the_alert_line_forgets_what_a_young_classifier_said_after_a_week_of_event_time() -> None:
    """Probabilities from before the classifier had learned much would otherwise hold the line
    at 1 for as long as they stayed in the window, whatever the classifier learned since."""
    detector = ready_detector(initial=0.9)
    size = len(CLASSIFIER_FEATURES)
    for i in range(10):  # day 0: its high probabilities were frauds a quarter of the time
        detector.learn_label((0.0,) * size + (0.95, 0.0), i % 4 == 0, 0.0, False)
    assert detector.classifier_threshold.value == 1.0
    six_days, eight_days = 6 * 86400.0, 8 * 86400.0
    for i in range(10):  # six days later it ranks well, but day 0 is still within the week
        detector.learn_label((0.0,) * size + (0.7 if i < 3 else 0.1, 0.0), i < 3, six_days, False)
    assert detector.classifier_threshold.value == 1.0
    for i in range(10):  # eight days later day 0 has aged out: the line follows the last week
        detector.learn_label((0.0,) * size + (0.7 if i < 3 else 0.1, 0.0), i < 3, eight_days, False)
    assert detector.classifier_threshold.value == 0.7


def test_an_alert_line_calibrated_before_the_event_time_horizon_is_recalibrated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    detector = ready_detector(initial=0.99)
    size = len(CLASSIFIER_FEATURES)
    for i in range(10):
        detector.learn_label((0.0,) * size + (0.7 if i < 3 else 0.1, 0.0), i < 3, 0.0, False)
    assert detector.classifier_threshold.value == 0.7
    fields = CalibrationParams.__getstate__
    # pickled as the version before the horizon pickled its parameters: without it
    monkeypatch.setattr(CalibrationParams, "__getstate__", lambda self: fields(self)[:-1])
    blob = detector.model_state()
    monkeypatch.undo()
    restored = Detector(detector.config)
    assert restored.restore_model_state(blob) is None
    assert restored.classifier_threshold.value == 0.99, "recalibrated from the labels to come"


def test_the_classifier_alert_line_is_learned_from_resolved_labels() -> None:
    detector = ready_detector(initial=0.99)
    size = len(CLASSIFIER_FEATURES)
    for i in range(10):
        detector.learn_label((0.0,) * size + (0.7 if i < 3 else 0.1, 0.0), i < 3, 0.0, False)
    assert detector.classifier_threshold.value == 0.7
    restored = Detector(detector.config)
    assert restored.restore_model_state(detector.model_state()) is None
    assert restored.classifier_threshold.value == 0.7


def _rules(*definitions: str) -> RuleSet:
    """The built-in rules seeded from ``SMALL``, then the given definitions' JSON applied."""
    rules = RuleSet(seed_definitions(SMALL, T0))
    for raw in definitions:
        assert rules.apply_json(raw).accepted
    return rules


def _definition(rule_id: str, version: int, mode: str, kind: str) -> str:
    return (
        f'{{"id": "{rule_id}", "version": {version}, "author": "ana", "reason": "test",'
        f' "mode": "{mode}", "created_at": "2024-12-01T00:00:00Z", "kind": {kind}}}'
    )


def test_every_rule_reason_names_the_rule_id_and_version() -> None:
    lowered = _definition(
        "amount_threshold", 2, "active", '{"type": "amount_threshold", "threshold": 500}'
    )
    detector = Detector(SMALL, rules=_rules(lowered))
    decision = detector.process(tx(0, 900), UserHistory(), 0, 0, T0)
    assert decision.alert is not None
    [reason] = decision.alert.reasons
    assert reason.to_dict() == {
        "type": "rule",
        "name": "amount_threshold",
        "threshold": 500.0,
        "rule": "amount_threshold",
        "version": 2,
    }


def test_a_shadow_rule_never_alerts_but_its_hits_are_in_the_decision() -> None:
    trial = _definition("big-spend", 1, "shadow", '{"type": "amount_threshold", "threshold": 100}')
    detector = Detector(SMALL, rules=_rules(trial))
    decision = detector.process(tx(0, 500), UserHistory(), 0, 0, T0)
    assert decision.alert is None and decision.risk < 0.5
    assert [(r.name, r.details["version"]) for r in decision.shadow_hits] == [("big-spend", 1)]


def test_a_shadow_rule_does_not_change_the_decision_of_the_active_rules() -> None:
    trial = _definition(
        "everything", 1, "shadow", '{"type": "expression", "expression": "amount > 0"}'
    )
    plain, shadowed = Detector(SMALL), Detector(SMALL, rules=_rules(trial))
    plain_history, shadow_history = UserHistory(), UserHistory()
    rng = random.Random(3)
    for i in range(300):
        amount = 15000.0 if i % 97 == 0 else rng.uniform(5, 60)
        a = plain.process(tx(i, amount), plain_history, 0, i, T0)
        b = shadowed.process(tx(i, amount), shadow_history, 0, i, T0)
        assert (a.risk, a.parts, a.model_input) == (b.risk, b.parts, b.model_input)
        assert (a.alert is None) == (b.alert is None)
        assert [r.name for r in b.shadow_hits] == ["everything"]


def test_a_disabled_built_in_rule_stops_alerting() -> None:
    off = _definition(
        "amount_threshold", 2, "disabled", '{"type": "amount_threshold", "threshold": 10000}'
    )
    decision = Detector(SMALL, rules=_rules(off)).process(tx(0, 15000), UserHistory(), 0, 0, T0)
    assert decision.alert is None


def test_an_active_allow_list_vouches_for_a_transaction_rules_would_alert() -> None:
    vip = _definition("vip", 1, "active", '{"type": "allow_list", "users": ["u1"]}')
    decision = Detector(SMALL, rules=_rules(vip)).process(tx(0, 15000), UserHistory(), 0, 0, T0)
    assert decision.alert is None and decision.risk == 0.0
    assert [r.name for r in decision.allowed_by] == ["vip"]


def test_a_rule_applied_between_two_events_takes_effect_on_the_next() -> None:
    detector = Detector(SMALL)
    history = UserHistory()
    assert detector.process(tx(0, 900), history, 0, 0, T0).alert is None
    lowered = _definition(
        "amount_threshold", 2, "active", '{"type": "amount_threshold", "threshold": 500}'
    )
    assert detector.rules.apply_json(lowered).accepted
    assert detector.process(tx(1, 900), history, 0, 1, T0).alert is not None


def test_a_round_decides_exactly_as_process_called_on_its_events_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """process_round scores the trees in one batch pass; every decision must still be the one
    process gives on the same sequence: pivots inside rounds, alerted events not learned,
    redeliveries scored but not learned, the warm-up passing in the middle of a round, amounts
    common in a category new to the user (their habit input left out of the trees' view)."""
    monkeypatch.setattr(categories, "MIN_COUNT", 10)  # categories judge after 10 payments
    monkeypatch.setattr(behaviour, "POPULATION_MIN", 50)  # the stream's scale evidence speaks
    rng = random.Random(11)
    config = DetectorConfig(hst=HSTParams(window_size=40), warmup=60, score_quantile=None)
    users = [f"u{k}" for k in range(25)]
    rounds: list[list[tuple[Transaction, int]]] = []
    offset = 0
    for _ in range(40):
        chosen = rng.sample(users, rng.randint(1, len(users)))
        batch = []
        for user in chosen:
            amount = rng.lognormvariate(3.5, 0.4) * (40 if rng.random() < 0.04 else 1)
            country = "FR" if rng.random() < 0.05 else "SE"
            extra = {
                "country": country,
                "merchantId": f"m{rng.randint(0, 30)}",
                "category": rng.choice(["food", "travel", "fuel", "books", "music", "toys"]),
            }
            batch.append((tx(offset, amount, user, extra, step=timedelta(minutes=7)), offset))
            offset += 1
        rounds.append(batch)
    # a redelivery of an applied event (its user's other event in that round left out)
    rounds[30] = [item for item in rounds[30] if item[0].user_id != rounds[29][0][0].user_id] + [
        rounds[29][0]
    ]

    one_by_one, batched = Detector(config), Detector(config)
    histories_a: dict[str, UserHistory] = {}
    histories_b: dict[str, UserHistory] = {}
    expected = []
    for batch in rounds:
        for transaction, position in batch:
            history = histories_a.setdefault(transaction.user_id, UserHistory())
            expected.append(one_by_one.process(transaction, history, 0, position, T0))
        one_by_one.behaviour.scale.refresh()  # the stream's scale evidence moves between rounds
    got: list[Any] = []
    for batch in rounds:
        items = [
            RoundItem(t, histories_b.setdefault(t.user_id, UserHistory()), 0, position, T0)
            for t, position in batch
        ]
        results: dict[int, Any] = {}
        batched.observe_stream(t for t, _ in batch)  # as the worker shows it its batch
        batched.process_round(items, lambda t: NO_SHARED_STATS, results.__setitem__)
        batched.behaviour.scale.refresh()
        got += [results[i] for i in range(len(items))]

    assert batched.behaviour.scale.prior != 0.0
    assert [d.score for d in got] == [d.score for d in expected]
    assert [d.risk for d in got] == [d.risk for d in expected]
    shares = [d.features["category_share"] for d in got]
    assert shares == [d.features["category_share"] for d in expected]
    assert max(shares) > 0.0, "no category profile was judged: the test proves less"
    common = [d.features["category_common"] for d in got]
    assert common == [d.features["category_common"] for d in expected] and sum(common) > 3
    assert [d.alert.alert_id if d.alert else None for d in got] == [
        d.alert.alert_id if d.alert else None for d in expected
    ]
    assert sum(d.redelivered for d in got) == 1
    assert sum(d.alert is not None for d in got) > 0, "nothing alerted: the test proves less"
    assert batched.scorer.learned == one_by_one.scorer.learned > 3 * config.hst.window_size
    probe = {"habit_up": 0.7, "habit_down_w": 0.0, "velocity": 0.2, "new_country": 1.0}
    assert batched.scorer.score(probe) == one_by_one.scorer.score(probe)


def _world(
    config: DetectorConfig, others: int, every: int, where: dict[str, str], shop: dict[str, str]
) -> tuple[Detector, UserHistory, int]:
    """A detector that has seen ``others`` payments ``where`` (one in ``every`` of them 500,
    each by a new user), and a user who has paid 20-40 at ``shop`` 12 times."""
    detector = Detector(config)
    position = 0
    for k in range(others):
        amount = 500.0 if k % every == 0 else 40.0 + k % 20
        detector.process(tx(k, amount, f"other{k}", where), UserHistory(), 0, position, T0)
        position += 1
    history = UserHistory()
    for k in range(12):
        decision = detector.process(tx(k, 20.0 + k * 1.7, "u1", shop), history, 0, position, T0)
        assert decision.alert is None
        position += 1
    return detector, history, position


def _category_world(config: DetectorConfig) -> tuple[Detector, UserHistory, int]:
    """The travel category has seen 300 payments, one in ten of them 500; the user has paid
    for groceries (never travel)."""
    grocery = {"category": "grocery", "merchantId": "shop"}
    return _world(config, 300, 10, {"category": "travel"}, grocery)


def test_an_amount_common_in_a_category_new_to_the_user_is_no_amount_evidence() -> None:
    """A 500 flight after months of groceries: ordinary for travel, where 1 in 10 pay that."""
    detector, history, position = _category_world(SMALL)
    flight = detector.process(tx(20, 500.0, "u1", {"category": "travel"}), history, 0, position, T0)
    assert flight.features["category_share"] == pytest.approx(0.1, abs=0.01)
    assert flight.features["category_common"] == 1.0
    assert flight.alert is None


def test_the_same_amount_in_the_users_own_category_or_rare_in_its_category_still_alerts() -> None:
    detector, history, position = _category_world(SMALL)
    groceries = detector.process(
        tx(20, 500.0, "u1", {"category": "grocery"}),
        UserHistory.decode(history.encode()),
        0,
        position,
        T0,
    )
    assert groceries.features["category_common"] == 0.0  # the user's habit rules there
    assert groceries.alert is not None and "habit_spike" in groceries.alert.reason_names
    rare = detector.process(
        tx(21, 5000.0, "u1", {"category": "travel"}),
        UserHistory.decode(history.encode()),
        0,
        position + 1,
        T0,
    )
    assert rare.features["category_share"] == 0.0 and rare.features["category_common"] == 0.0
    assert rare.alert is not None and "habit_spike" in rare.alert.reason_names


def _merchant_world(config: DetectorConfig) -> tuple[Detector, UserHistory, int]:
    """No category anywhere: a travel agency has had 40 payments, one in five of them 500 (each
    ordinary for its payer); the user has paid at a shop."""
    return _world(config, 40, 5, {"merchantId": "agency"}, {"merchantId": "shop"})


def test_without_categories_an_amount_common_at_a_merchant_new_to_the_user_is_no_evidence() -> None:
    """The agency's own payments stand for the category the stream does not name."""
    detector, history, position = _merchant_world(SMALL)
    trip = tx(20, 500.0, "u1", {"merchantId": "agency"})
    booked = detector.process(trip, UserHistory.decode(history.encode()), 0, position, T0)
    assert booked.features["category_share"] == pytest.approx(0.2, abs=0.01)
    assert booked.features["category_common"] == 1.0
    assert booked.alert is None
    at_the_shop = tx(21, 500.0, "u1", {"merchantId": "shop"})  # where the user's habit rules
    spike = detector.process(at_the_shop, UserHistory.decode(history.encode()), 0, position, T0)
    assert spike.features["category_common"] == 0.0
    assert spike.alert is not None and "habit_spike" in spike.alert.reason_names


def test_a_user_alerted_within_the_day_gets_no_merchants_benefit_of_the_doubt() -> None:
    """Card testing then cash-out: after an alert, the agency's ordinary 500 is evidence again."""
    detector, history, position = _merchant_world(SMALL)
    tested = detector.process(tx(20, 900.0, "u1", {"merchantId": "shop"}), history, 0, position, T0)
    assert tested.alert is not None
    hour_later = tx(21, 500.0, "u1", {"merchantId": "agency"})
    cashed = detector.process(hour_later, history, 0, position + 1, T0)
    assert cashed.features["category_share"] == pytest.approx(0.2, abs=0.01)
    assert cashed.features["category_common"] == 0.0 and cashed.alert is not None


def test_a_merchant_profile_speaks_from_twenty_payments_ordinary_for_their_payers() -> None:
    """A young merchant says nothing, and payments far above their payer's habit do not count:
    fraud that makes large amounts frequent at a merchant must not make them ordinary there."""
    detector, history, position = _merchant_world(SMALL)
    for k in range(MERCHANT_MIN_COUNT + 5):
        at_new = tx(30 + k, 500.0, "u1", {"merchantId": "new"})
        decision = detector.process(at_new, UserHistory.decode(history.encode()), 0, position, T0)
        assert decision.features["z"] >= MERCHANT_ORDINARY_Z
        assert decision.features["category_common"] == 0.0 and decision.alert is not None
        position += 1
    assert detector.categories.merchant_share_then_count("new", None, 500.0, False) is None
    young = Detector(SMALL)
    for k in range(MERCHANT_MIN_COUNT - 1):
        young.process(tx(k, 500.0, f"other{k}", {"merchantId": "agency"}), UserHistory(), 0, k, T0)
    assert young.categories.merchant_share_then_count("agency", None, 500.0, False) is None
    young.process(tx(99, 500.0, "last", {"merchantId": "agency"}), UserHistory(), 0, 99, T0)
    assert young.categories.merchant_share_then_count("agency", None, 500.0, False) == 1.0


def _spree_world(extra: dict[str, Any]) -> tuple[Detector, UserHistory, int]:
    """A user who has paid 40 for groceries and 200 for travel, alternately, for 30 days
    (300 is z ~1.5 against their mix), and ten regular grocery customers paying 25-62."""
    detector = Detector(SMALL)
    history, position = UserHistory(), 0
    for k in range(300):
        grocery = {**extra, "category": "grocery"} if "category" in extra else extra
        amount = 25.0 + (k * 7) % 38
        detector.process(tx(k, amount, f"c{k % 10}", grocery), UserHistory(), 0, position, T0)
        position += 1
    for day in range(30):
        for j, (category, amount) in enumerate((("grocery", 40.0), ("travel", 200.0))):
            own = {**extra, "category": category} if "category" in extra else extra
            when = 24 * day + 12 * j
            detector.process(tx(when, amount, "u1", own), history, 0, position, T0)
            position += 1
    return detector, history, position


def test_a_run_of_amounts_rare_in_their_category_counts_as_a_spree() -> None:
    """Six 300 grocery bills in a night: z ~1.4 against the user's 40-200 mix, which the
    spree counts at 0.4 each, but no regular grocery customer pays that: counted at their
    rarity (z + 0.5), the spree reaches its line with the day's spending."""
    detector, history, position = _spree_world({"category": None})
    decisions = [
        detector.process(
            tx(24 * 30 + k, 300.0, "u1", {"category": "grocery"}), history, 0, position + k, T0
        )
        for k in range(6)
    ]
    first = decisions[0].features
    assert first["category_share"] == 0.0 and first["spree_z"] == first["z"] + 0.5
    assert decisions[-1].alert is not None
    assert decisions[-1].alert.reasons[0].details["part"] == "spree"


def test_without_categories_the_spree_counts_the_users_own_z() -> None:
    detector, history, position = _spree_world({})
    decisions = [
        detector.process(tx(24 * 30 + k, 300.0, "u1"), history, 0, position + k, T0)
        for k in range(6)
    ]
    assert all(d.features["spree_z"] == d.features["z"] for d in decisions)
    assert all(d.alert is None for d in decisions)


def test_an_amount_usual_for_the_user_in_its_category_is_no_amount_evidence() -> None:
    """Groceries at 20-80 every day and a ~500 trip every week: the first trip alerts, the next
    ones recur and are learned. A 900 trip is then far above the user's overall habit but
    within their own spread of what they pay for travel; the same 900 for groceries is not."""
    detector, history, position = Detector(SMALL), UserHistory(), 0
    for k in range(300):  # other users: the trees warm up on ordinary groceries
        other = tx(k, 30.0 + k % 20, f"o{k % 30}", {"category": "grocery"}, timedelta(minutes=30))
        detector.process(other, UserHistory(), 0, position, T0)
        position += 1
    trips = []
    for week in range(5):
        for day in range(7):
            groceries = tx(24 * (7 * week + day), [20.0, 35.0, 50.0, 80.0][day % 4], "u1",
                           {"category": "grocery"})  # fmt: skip
            assert detector.process(groceries, history, 0, position, T0).alert is None
            position += 1
        trip = tx(24 * (7 * week + 6) + 3, 480.0 + 10 * week, "u1", {"category": "travel"})
        trips.append(detector.process(trip, history, 0, position, T0))
        position += 1
    assert trips[0].alert is not None and all(t.alert is None for t in trips[1:])
    later = 24 * (7 * 5 + 4) + 3
    travel, groceries = (
        detector.process(
            tx(later, 900.0, "u1", {"category": category}),
            UserHistory.decode(history.encode()),
            0,
            position,
            T0,
        )
        for category in ("travel", "grocery")
    )
    assert travel.features["z"] == groceries.features["z"] > 3.5
    assert travel.features["recurring"] == 0.0  # not the recurring-payment rule's doing
    assert travel.features["category_usual"] == travel.features["category_common"] == 1.0
    assert travel.alert is None and hst_view(travel.features)["habit_up"] == 0.0
    # the same amount for groceries is amount evidence (alone, below the habit-spike line)
    assert groceries.features["category_common"] == 0.0
    assert hst_view(groceries.features)["habit_up"] > 0.5 and groceries.score > travel.score


def test_the_category_profile_can_be_turned_off() -> None:
    off = DetectorConfig(
        hst=HSTParams(window_size=100), warmup=100, score_quantile=None, common_category_share=0.0
    )
    detector, history, position = _category_world(off)
    flight = detector.process(tx(20, 500.0, "u1", {"category": "travel"}), history, 0, position, T0)
    assert flight.features["category_common"] == 0.0
    assert flight.alert is not None and "habit_spike" in flight.alert.reason_names


def test_the_category_profile_counts_its_regular_customers_once_each_payment() -> None:
    """A payment in a category new to its user is judged by the profile, never counted in it:
    fraud striking new categories must not teach it that its amounts are common."""
    detector, history, position = _category_world(SMALL)
    travel = detector.categories.categories["travel|"]
    seen = travel.seen
    first = detector.process(tx(20, 45.0, "u1", {"category": "travel"}), history, 0, position, T0)
    assert first.alert is None and first.features["new_category"] == 1.0
    assert travel.seen == seen  # travel was new to u1
    again = tx(21, 50.0, "u1", {"category": "travel"})
    detector.process(again, history, 0, position + 1, T0)
    detector.process(again, history, 0, position + 1, T0)  # redelivered: scored, not counted
    assert travel.seen == seen + 1  # u1 pays in travel now


def test_the_category_profile_is_checkpointed() -> None:
    detector, _, _ = _category_world(SMALL)
    restored = Detector(SMALL)
    assert restored.restore_model_state(detector.model_state()) is None
    assert restored.categories.share("travel", None, 500.0) == pytest.approx(0.1, abs=0.01)
    assert restored.categories.share("travel", None, 500.0) == detector.categories.share(
        "travel", None, 500.0
    )


def test_a_decision_just_under_the_alert_line_is_published_under_it() -> None:
    # a probability held under an uncalibrated line of 1 scores 0.5 * (1 - 1e-9): rounded to
    # 6 decimals it read as 0.5, and evaluate counted it with the alerts
    under = 0.5 * (1 - 1e-9)
    decision = Decision(0.1, {}, None, risk=under, parts={"fraud_classifier": under})
    published = orjson.loads(decision.to_json(tx(1, 50.0)))
    assert published["risk"] < 0.5 and published["parts"]["fraud_classifier"] < 0.5
    assert published["alert"] is False
    at_line = Decision(0.1, {}, None, risk=0.5, parts={"rules": 1.0})
    assert orjson.loads(at_line.to_json(tx(1, 50.0)))["risk"] == 0.5
