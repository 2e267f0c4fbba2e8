"""Rules: amount, habit spike, unfamiliar place, velocity, lists, expressions; each says why."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from fraudstream.core.expressions import parse
from fraudstream.core.features import FeatureScales, UserProfile, compute_features, update_profile
from fraudstream.core.records import Transaction
from fraudstream.core.rules import (
    EXPRESSION_FIELDS,
    AllowListRule,
    AmountThresholdRule,
    DenyListRule,
    ExpressionRule,
    HabitSpikeRule,
    ListMatch,
    UnfamiliarPlaceRule,
    VelocityRule,
    expression_values,
)

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


def test_velocity_counts_the_transaction_itself_with_the_remembered_ones_in_the_window() -> None:
    profile = UserProfile(recent_times=[0.0, 40.0, 90.0], recent_amounts=[5.0, 5.0, 5.0])
    at_100 = Transaction("t", "u", 5.0, datetime.fromtimestamp(100, timezone.utc))
    assert VelocityRule(window_seconds=60.0, max_count=3).check(at_100, profile, {}) is not None
    assert VelocityRule(window_seconds=59.0, max_count=3).check(at_100, profile, {}) is None
    assert VelocityRule(window_seconds=60.0, max_count=4).check(at_100, profile, {}) is None


def test_velocity_total_must_be_strictly_over_the_amount_limit() -> None:
    profile = UserProfile(recent_times=[90.0], recent_amounts=[50.0])
    at_100 = Transaction("t", "u", 50.0, datetime.fromtimestamp(100, timezone.utc))
    assert VelocityRule(window_seconds=60.0, max_amount=100.0).check(at_100, profile, {}) is None
    reason = VelocityRule(window_seconds=60.0, max_amount=99.99).check(at_100, profile, {})
    assert reason is not None and reason.details["total"] == 100.0


def test_list_match_reports_the_first_list_the_transaction_is_on() -> None:
    match = ListMatch(users=frozenset({"u"}), countries=frozenset({"DE"}))
    assert match.find(tx(5.0, HOME)) == {"matched": "user", "value": "u"}
    assert ListMatch(countries=frozenset({"DE"})).find(tx(5.0, HOME)) == {
        "matched": "country",
        "value": "DE",
    }
    assert ListMatch(merchants=frozenset({"M1"})).find(tx(5.0)) is None  # no merchant given


def test_deny_list_alerts_and_allow_list_only_allows() -> None:
    match = ListMatch(merchants=frozenset({"M1"}))
    denied = DenyListRule(match).check(tx(5.0, HOME), UserProfile(), {})
    allowed = AllowListRule(match).allows(tx(5.0, HOME), UserProfile(), {})
    assert denied is not None and denied.to_dict()["name"] == "deny_list"
    assert allowed is not None and allowed.to_dict()["name"] == "allow_list"
    assert not hasattr(AllowListRule(match), "check")


def test_expressions_see_the_raw_amount_and_utc_hour_and_weekday_over_the_features() -> None:
    features = compute_features(UserProfile(), 150.0, 0.0, FeatureScales(), HOME)
    values = expression_values(tx(150.0, HOME), features)  # Wednesday 2024-12-04 00:00 UTC
    assert set(values) == EXPRESSION_FIELDS
    assert (values["amount"], values["hour"], values["weekday"]) == (150.0, 0.0, 2.0)
    assert values["country"] == "DE" and values["channel"] is None
    rule = ExpressionRule(parse("weekday == 2 and amount_zscore == 0.5", EXPRESSION_FIELDS))
    assert rule.check(tx(150.0, HOME), UserProfile(), features) is not None
