"""Rules: amount threshold, habit spike, unfamiliar place, user deviation; each says why."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fraudstream.core.behaviour import BehaviourFeatures, UserHistory
from fraudstream.core.records import Transaction
from fraudstream.core.rules import (
    AmountThresholdRule,
    HabitSpikeRule,
    UnfamiliarPlaceRule,
    UserDeviationRule,
    beyond,
)

T0 = datetime(2024, 12, 4, tzinfo=timezone.utc)
HOME = {"merchant": "M1", "country": "DE"}
ABROAD = {"merchant": "M9", "country": "NG"}
MODEL = BehaviourFeatures()


def tx(amount: float, at: datetime = T0, **optional: Any) -> Transaction:
    return Transaction("t", "u", amount, at, **optional)


def history(amounts: list[float], gap: timedelta = timedelta(hours=1)) -> UserHistory:
    h = UserHistory()
    for i, amount in enumerate(amounts):
        MODEL.update(h, tx(amount, T0 - gap * (len(amounts) - i), **HOME), 0, i, False)
    return h


def check(rule: Any, amount: float, h: UserHistory, **optional: Any) -> dict[str, Any] | None:
    t = tx(amount, **optional)
    features = MODEL.features(h, t)
    reason = rule.check(t, h, features)
    assert (reason is not None) == (rule.level(t, h, features) >= 0.5)  # level agrees
    return None if reason is None else reason.to_dict()


HABIT = [20.0, 25.0, 18.0, 22.0, 30.0]


@pytest.mark.parametrize(
    ("amount", "fires"), [(10000, False), (10000.01, True), (9999.99, False), (0, False)]
)
def test_rule_boundary_is_strictly_greater(amount: float, fires: bool) -> None:
    assert (check(AmountThresholdRule(10000), amount, UserHistory()) is not None) is fires


def test_reason_names_the_rule_and_its_threshold() -> None:
    reason = check(AmountThresholdRule(500), 501, UserHistory())
    assert reason == {"type": "rule", "name": "amount_threshold", "threshold": 500.0}


def test_a_rule_level_crosses_one_half_exactly_at_its_line() -> None:
    assert beyond(4.5, 4.5) == 0.5
    assert beyond(4.49, 4.5) < 0.5 < beyond(4.51, 4.5)


def test_habit_spike_fires_far_above_the_users_own_habit_and_says_how_far() -> None:
    rule = HabitSpikeRule(zscore_threshold=4.5, min_history=3)
    assert check(rule, 40.0, history(HABIT)) is None
    reason = check(rule, 900.0, history(HABIT))
    assert reason is not None and reason["name"] == "habit_spike" and reason["type"] == "rule"
    assert reason["zscore"] >= reason["threshold"] == 4.5
    assert 18.0 < reason["habitMedian"] < 30.0


def test_habit_spike_waits_for_enough_history() -> None:
    rule = HabitSpikeRule(zscore_threshold=4.5, min_history=3)
    assert check(rule, 900.0, history([20.0, 25.0])) is None
    assert check(rule, 900.0, UserHistory()) is None


def test_unfamiliar_place_needs_new_merchant_new_country_and_an_unusual_amount() -> None:
    rule = UnfamiliarPlaceRule(zscore_threshold=2.0, min_history=3)
    reason = check(rule, 150.0, history(HABIT), **ABROAD)
    assert reason is not None and reason["name"] == "unfamiliar_place"
    assert (reason["newCountry"], reason["newMerchant"]) == ("NG", "M9")
    assert reason["zscore"] >= reason["threshold"] == 2.0
    assert check(rule, 22.0, history(HABIT), **ABROAD) is None  # ordinary amount abroad: travel
    assert check(rule, 150.0, history(HABIT), merchant="M9", country="DE") is None
    assert check(rule, 150.0, history(HABIT), merchant="M1", country="NG") is None
    assert check(rule, 150.0, history(HABIT[:2]), **ABROAD) is None  # too little history


DEVIATION = UserDeviationRule(
    zscore_threshold=4.5, min_history=5, zscore_after_alert=3.0, burst_threshold=4.0
)
STEADY = [100.0, 110.0, 90.0, 105.0, 95.0, 100.0, 98.0, 102.0]


def test_user_deviation_fires_on_an_amount_far_from_the_users_own_scale() -> None:
    assert check(DEVIATION, 120.0, history(STEADY * 2)) is None
    reason = check(DEVIATION, 400.0, history(STEADY * 2))
    assert reason is not None and reason["name"] == "user_deviation"
    assert reason["part"] == "amount" and reason["zscore"] >= reason["threshold"] == 4.5


def test_user_deviation_waits_for_enough_history_before_judging_amounts() -> None:
    assert check(DEVIATION, 400.0, history(STEADY[:4])) is None


def test_user_deviation_needs_less_shortly_after_the_users_last_alert() -> None:
    h = history(STEADY * 2)
    features = MODEL.features(h, tx(200.0))
    assert 3.0 <= features["z"] < 4.5
    assert check(DEVIATION, 200.0, h) is None
    h.t_alert = (T0 - timedelta(days=3)).timestamp()
    reason = check(DEVIATION, 200.0, h)
    assert reason is not None and reason["threshold"] == 3.0
    h.t_alert = (T0 - timedelta(days=15)).timestamp()  # beyond the 14-day memory
    assert check(DEVIATION, 200.0, h) is None


def test_user_deviation_fires_on_a_burst_against_the_users_own_rate() -> None:
    h = history(STEADY * 4, gap=timedelta(days=1))
    at = T0
    for i in range(3):  # three payments seconds apart, from a once-a-day user
        MODEL.update(h, tx(100.0, at + timedelta(seconds=5 * i)), 0, 100 + i, True, False)
    reason = check(DEVIATION, 100.0, h, at=at + timedelta(seconds=15))
    assert reason is not None and reason["part"] == "burst"
    assert reason["zscore"] >= reason["threshold"] == 4.0
