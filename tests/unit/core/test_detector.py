"""The detection core end to end on plain data: reasons, warm-up, learning, redelivery."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from fraudstream.core.detector import Detector, DetectorConfig
from fraudstream.core.features import FeatureScales, UserProfile, compute_features
from fraudstream.core.model import HSTParams
from fraudstream.core.records import Transaction

T0 = datetime(2024, 12, 4, tzinfo=timezone.utc)
SMALL = DetectorConfig(hst=HSTParams(window_size=100), warmup=100, score_quantile=None)


def tx(i: int, amount: float, user: str = "u1", extra: dict[str, Any] | None = None) -> Transaction:
    extra = extra or {}
    when = T0 + timedelta(minutes=i)
    merchant, country = extra.get("merchantId"), extra.get("country")
    return Transaction(f"t{i}", user, amount, when, extra, merchant=merchant, country=country)


def test_rule_alone_raises_an_alert_with_only_the_rule_reason() -> None:
    detector = Detector(SMALL)
    decision = detector.process(tx(0, 15000), UserProfile(), 0, 0, T0)
    assert decision.alert is not None
    assert decision.alert.reason_names == ["amount_threshold"]


def test_no_model_alert_during_warm_up_even_for_extreme_scores() -> None:
    detector = Detector(
        DetectorConfig(hst=HSTParams(window_size=100), warmup=100, score_threshold=0.0)
    )
    profile = UserProfile()
    for i in range(99):
        decision = detector.process(tx(i, 50 + i % 7), profile, 0, i, T0)
        assert decision.alert is None, i
    assert not detector.scorer.warmed_up


def test_model_flags_a_habit_spike_after_warm_up() -> None:
    rng = random.Random(3)
    detector = Detector(SMALL)
    profiles: dict[str, UserProfile] = {}
    for i in range(800):
        user = f"u{i % 40}"
        profile = profiles.setdefault(user, UserProfile())
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
    profile = UserProfile()
    for i, amount in enumerate([20.0, 25.0, 18.0, 22.0, 30.0]):
        detector.process(tx(i, amount), profile, 0, i, T0)
    decision = detector.process(tx(5, 2000.0), profile, 0, 5, T0)
    assert decision.alert is not None
    assert decision.alert.reason_names == ["habit_spike"]
    reason = decision.alert.reasons[0].to_dict()
    assert reason["zscore"] >= reason["threshold"] == SMALL.habit_spike_zscore


def test_unfamiliar_place_rule_names_the_new_country_and_merchant() -> None:
    detector = Detector(SMALL)
    profile = UserProfile()
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
    usual = detector.process(tx(6, 150.0, extra=home), profile, 0, 6, T0)
    assert usual.alert is None


def test_every_reason_that_fired_is_listed() -> None:
    detector = Detector(
        DetectorConfig(
            hst=HSTParams(window_size=10), warmup=10, score_threshold=0.0, score_quantile=None
        )
    )
    profile = UserProfile()
    for i in range(10):
        detector.process(tx(i, 20), profile, 0, i, T0)
    decision = detector.process(tx(10, 20000), profile, 0, 10, T0)
    assert decision.alert is not None
    assert decision.alert.reason_names == ["amount_threshold", "habit_spike", "half_space_trees"]


def test_alerted_events_are_not_learned() -> None:
    detector = Detector(SMALL)
    detector.process(tx(0, 15000), UserProfile(), 0, 0, T0)
    assert detector.scorer.learned == 0
    detector.process(tx(1, 15), UserProfile(), 0, 1, T0)
    assert detector.scorer.learned == 1


def test_redelivered_message_changes_nothing_and_keeps_its_alert_id() -> None:
    detector = Detector(SMALL)
    profile = UserProfile()
    detector.process(tx(0, 20, extra={"merchantId": "M1", "country": "DE"}), profile, 3, 6, T0)
    first = detector.process(tx(1, 15000, extra={"country": "FR"}), profile, 3, 7, T0)
    snapshot = profile.to_dict()
    late = T0 + timedelta(seconds=5)
    again = detector.process(tx(1, 15000, extra={"country": "FR"}), profile, 3, 7, late)
    assert again.redelivered and not first.redelivered
    assert profile.to_dict() == snapshot
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
    profile = UserProfile()
    alerts = [
        detector.process(tx(i, 20 + i % 5), profile, 0, i, T0).alert is not None for i in range(150)
    ]
    assert not any(alerts), "model alerted before its threshold had seen enough scores"
    assert detector.threshold.ready


def trained_detector(events: int = 300) -> Detector:
    detector = Detector(SMALL)
    profile = UserProfile()
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
    probe = compute_features(UserProfile(), 40.0, 0.0, FeatureScales())
    probe.update(velocity=0.3, amount_above_habit=0.6)
    assert restored.scorer.score(probe) == original.scorer.score(probe)


def test_checkpoint_with_other_model_parameters_is_refused() -> None:
    other = Detector(DetectorConfig(hst=HSTParams(window_size=100, height=6), warmup=100))
    reason = other.restore_model_state(trained_detector(10).model_state())
    assert reason is not None and "HST" in reason
    assert other.scorer.learned == 0


def test_corrupt_checkpoint_is_refused_not_raised() -> None:
    assert Detector(SMALL).restore_model_state(b"\x80\x05garbage") is not None
