"""Rules: amount threshold, habit spike, unfamiliar place; each reason says why it fired."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from fraudstream.core.features import FeatureScales, UserProfile, compute_features, update_profile
from fraudstream.core.records import Transaction
from fraudstream.core.rules import AmountThresholdRule, HabitSpikeRule, UnfamiliarPlaceRule

HOME = {"merchantId": "M1", "country": "DE"}
ABROAD = {"merchantId": "M9", "country": "NG"}


def tx(amount: float, extra: dict[str, Any] | None = None) -> Transaction:
    extra = extra or {}
    when = datetime(2024, 12, 4, tzinfo=timezone.utc)
    return Transaction(
        "t",
        "u",
        amount,
        when,
        extra,
        merchant=extra.get("merchantId"),
        country=extra.get("country"),
    )


def history(amounts: list[float]) -> UserProfile:
    profile = UserProfile()
    for i, amount in enumerate(amounts):
        update_profile(profile, amount, i * 3600.0, FeatureScales(), 0, i, extra=HOME)
    return profile


HABIT = [20.0, 25.0, 18.0, 22.0, 30.0]


@pytest.mark.parametrize(
    ("amount", "fires"), [(10000, False), (10000.01, True), (9999.99, False), (0, False)]
)
def test_rule_boundary_is_strictly_greater(amount: float, fires: bool) -> None:
    assert (AmountThresholdRule(10000).check(tx(amount), UserProfile(), {}) is not None) is fires


def test_reason_names_the_rule_and_its_threshold() -> None:
    reason = AmountThresholdRule(500).check(tx(501), UserProfile(), {})
    assert reason is not None
    assert reason.to_dict() == {"type": "rule", "name": "amount_threshold", "threshold": 500.0}


def test_habit_spike_fires_far_above_the_users_own_habit_and_says_how_far() -> None:
    rule = HabitSpikeRule(zscore_threshold=4.5, min_history=3)
    assert rule.check(tx(40.0), history(HABIT), {}) is None
    found = rule.check(tx(900.0), history(HABIT), {})
    assert found is not None
    reason = found.to_dict()
    assert reason["name"] == "habit_spike" and reason["type"] == "rule"
    assert reason["zscore"] >= reason["threshold"] == 4.5
    assert 18.0 < reason["habitMedian"] < 30.0


def test_habit_spike_waits_for_enough_history() -> None:
    rule = HabitSpikeRule(zscore_threshold=4.5, min_history=3)
    assert rule.check(tx(900.0), history([20.0, 25.0]), {}) is None
    assert rule.check(tx(900.0), UserProfile(), {}) is None


def place_check(amount: float, extra: dict[str, Any], profile: UserProfile) -> Any:
    features = compute_features(profile, amount, 1e6, FeatureScales(), extra)
    reason = UnfamiliarPlaceRule(zscore_threshold=2.0, min_history=3).check(
        tx(amount, extra), profile, features
    )
    return None if reason is None else reason.to_dict()


def test_unfamiliar_place_needs_new_merchant_new_country_and_an_unusual_amount() -> None:
    profile = history(HABIT)
    reason = place_check(150.0, ABROAD, profile)
    assert reason is not None and reason["name"] == "unfamiliar_place"
    assert (reason["newCountry"], reason["newMerchant"]) == ("NG", "M9")
    assert reason["zscore"] >= reason["threshold"] == 2.0
    assert place_check(22.0, ABROAD, profile) is None  # ordinary amount abroad: travel
    assert place_check(150.0, {"merchantId": "M9", "country": "DE"}, profile) is None
    assert place_check(150.0, {"merchantId": "M1", "country": "NG"}, profile) is None
    assert place_check(150.0, ABROAD, history(HABIT[:2])) is None  # too little history
