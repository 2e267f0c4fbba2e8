"""Rules: amount, habit spike, unfamiliar place, user deviation, velocity, lists, expressions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fraudstream.core.behaviour import BehaviourFeatures, ScaleEvidence, UserHistory
from fraudstream.core.expressions import parse
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
    UserDeviationRule,
    VelocityRule,
    beyond,
    expression_values,
)

T0 = datetime(2024, 12, 4, tzinfo=timezone.utc)
HOME = {"merchant": "M1", "country": "DE"}
ABROAD = {"merchant": "M9", "country": "NG"}
#: One user's own evidence decides their scale: no stream-wide evidence shared across tests.
MODEL = BehaviourFeatures(scale=ScaleEvidence(weight=0.0))


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


def test_a_threshold_in_amount_units_is_that_many_of_the_detectors_unit() -> None:
    """The default line is 10,000 of the stream's unit: 1,000,000 on amounts in cents, and
    the reason gives the line the raw amount crossed."""
    rule = AmountThresholdRule(10000, in_amount_units=True)
    t = tx(50_000.0)  # 500.00 in cents
    assert rule.check(t, UserHistory(), {"amount_unit": 100.0}) is None
    assert rule.level(t, UserHistory(), {"amount_unit": 100.0}) == 0.0
    over = rule.check(tx(1_000_000.01), UserHistory(), {"amount_unit": 100.0})
    assert over is not None and over.to_dict()["threshold"] == 1_000_000.0
    assert AmountThresholdRule(10000).check(t, UserHistory(), {"amount_unit": 100.0}) is not None


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


def test_where_coordinates_are_given_an_unfamiliar_place_must_also_be_far_from_home() -> None:
    """The user pays around (50, 10), usually within ~0.1 degrees of their centre: a new shop
    across the border nearby is not an unfamiliar place, one a continent away is."""
    h = UserHistory()
    spots = [(50.0, 10.0), (50.1, 10.0), (50.0, 10.1), (49.9, 10.0), (50.0, 9.9)]
    for i, (lat, lon) in enumerate(spots * 2):
        at = T0 - timedelta(hours=len(spots) * 2 - i)
        MODEL.update(h, tx(HABIT[i % 5], at, latitude=lat, longitude=lon, **HOME), 0, i, False)
    rule = UnfamiliarPlaceRule(zscore_threshold=2.0, min_history=3, distance_ratio=3.0)
    assert check(rule, 150.0, h, latitude=50.15, longitude=10.1, **ABROAD) is None
    reason = check(rule, 150.0, h, latitude=6.5, longitude=3.4, **ABROAD)
    assert reason is not None and reason["distanceRatio"] > 100
    without = UnfamiliarPlaceRule(zscore_threshold=2.0, min_history=3, distance_ratio=0.0)
    assert check(without, 150.0, h, latitude=50.15, longitude=10.1, **ABROAD) is not None
    # no coordinates on the payment, or none known for the user: judged as before
    assert "distanceRatio" not in (check(rule, 150.0, h, **ABROAD) or {"distanceRatio": 0})
    assert check(rule, 150.0, history(HABIT), latitude=50.15, longitude=10.1, **ABROAD)


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
    h.t_alert = (T0 - timedelta(days=1)).timestamp()
    reason = check(DEVIATION, 200.0, h)
    assert reason is not None and reason["threshold"] == 3.0
    h.t_alert = (T0 - timedelta(days=15)).timestamp()  # beyond the 14-day memory
    assert check(DEVIATION, 200.0, h) is None


def test_after_a_burst_that_ended_the_lower_line_lasts_three_days() -> None:
    """An episode that was one burst (first and newest alert an hour apart) holds the lowered
    line for EPISODE_HOLD_MIN after its newest alert; one that went on for days holds it
    EPISODE_HOLD_FACTOR times as long, within the 14-day memory of its start."""
    h = history(STEADY * 2)
    h.t_episode = (T0 - timedelta(days=4, hours=1)).timestamp()
    h.t_alert = (T0 - timedelta(days=4)).timestamp()
    assert check(DEVIATION, 200.0, h) is None
    h.t_alert = (T0 - timedelta(days=2, hours=23)).timestamp()
    h.t_episode = h.t_alert - 3600.0
    assert check(DEVIATION, 200.0, h) is not None
    h.t_episode = (T0 - timedelta(days=5)).timestamp()  # a day of fraud: held for 6 days
    h.t_alert = (T0 - timedelta(days=4)).timestamp()
    assert check(DEVIATION, 200.0, h) is not None
    h.t_episode = (T0 - timedelta(days=15)).timestamp()  # but never past the memory
    assert check(DEVIATION, 200.0, h) is None


def test_past_the_hold_a_payment_over_the_lowered_line_is_suspect_and_holds_it_again() -> None:
    """Not alerted, but the rule says so (the detector then keeps it out of the history), and
    the hold runs from it: a slow fraud's next payment is alerted."""
    h = history(STEADY * 2)
    h.t_episode = h.t_alert = (T0 - timedelta(days=5)).timestamp()  # a burst, ended
    features = MODEL.features(h, tx(200.0))
    assert check(DEVIATION, 200.0, h) is None
    assert DEVIATION.suspects(tx(200.0), h, features)
    assert not DEVIATION.suspects(tx(120.0), h, MODEL.features(h, tx(120.0)))
    h.t_suspect = (T0 - timedelta(days=1)).timestamp()
    reason = check(DEVIATION, 200.0, h)
    assert reason is not None and reason["threshold"] == 3.0
    h.t_episode = h.t_alert = (T0 - timedelta(days=15)).timestamp()  # no episode: nothing
    assert not DEVIATION.suspects(tx(200.0), h, features)


def test_user_deviation_fires_on_a_burst_against_the_users_own_rate() -> None:
    h = history(STEADY * 4, gap=timedelta(days=1))
    at = T0
    for i in range(3):  # three payments seconds apart, from a once-a-day user
        MODEL.update(h, tx(100.0, at + timedelta(seconds=5 * i)), 0, 100 + i, True, False)
    reason = check(DEVIATION, 100.0, h, at=at + timedelta(seconds=15))
    assert reason is not None and reason["part"] == "burst"
    assert reason["zscore"] >= reason["threshold"] == 4.0


def test_tiny_amounts_minutes_apart_are_a_burst_for_a_once_a_day_user() -> None:
    """Card testing spaced out past the minute: the hour's count alone is not yet surprising,
    with amounts far below habit it is; the same rhythm at habitual or larger amounts is not."""

    def second_of_two(amount: float) -> dict[str, Any] | None:
        h = history(STEADY * 4, gap=timedelta(days=1))
        MODEL.update(h, tx(amount, T0), 0, 100, False)
        return check(DEVIATION, amount, h, at=T0 + timedelta(minutes=4))

    tested = second_of_two(1.0)
    assert tested is not None and tested["part"] == "burst"
    assert tested["zscore"] >= tested["threshold"] == 4.0
    assert second_of_two(100.0) is None  # habitual amount: a second purchase within the hour
    assert second_of_two(130.0) is None  # above habit: for the amount rules to judge


#: A once-a-day spender whose amounts spread widely (log-normal): 900 is z ~2 for them.
WIDE = [20.0, 150.0, 40.0, 300.0, 60.0, 90.0, 25.0, 200.0]


def spree_of(amounts: list[float], apart: timedelta) -> tuple[UserHistory, datetime]:
    """The wide spender's month, then ``amounts`` ``apart`` each; and when the next is due."""
    h = history(WIDE * 4, gap=timedelta(days=1))
    for i, amount in enumerate(amounts):
        MODEL.update(h, tx(amount, T0 + apart * i), 0, 100 + i, False)
    return h, T0 + apart * len(amounts)


def test_user_deviation_fires_on_a_spree_of_payments_each_only_moderately_large() -> None:
    h, then = spree_of([900.0, 900.0], apart=timedelta(hours=4))
    features = MODEL.features(h, tx(900.0, then))
    assert 1.0 < features["z"] < 3.0  # no amount line comes near it
    reason = check(DEVIATION, 900.0, h, at=then)
    assert reason is not None and reason["part"] == "spree"
    assert reason["spree"] >= reason["threshold"] == 3.0
    assert reason["daySpend"] >= reason["daySpendThreshold"] == 1.5
    h, then = spree_of([900.0, 900.0], apart=timedelta(days=6))  # the same, over two weeks
    assert check(DEVIATION, 900.0, h, at=then) is None


def test_a_spree_needs_each_of_its_conditions_and_a_user_seen_for_a_day() -> None:
    ordinary = {"rate_z_1m": 0.0, "rate_z_1h": 0.0, "w_raw": 0.5}
    # spree_z: the payment's z as the spree counts it (lifted where rare in its category)
    spree = {**ordinary, "z": 2.0, "spree_z": 2.0, "spree": 3.5, "spend_1d": 2.5}
    h, t = history(STEADY, gap=timedelta(hours=4)), tx(200.0)  # seen for 32 hours
    assert DEVIATION.level(t, h, spree) > 0.5
    for name, short in (("spree_z", 0.9), ("spree", 2.9), ("spend_1d", 1.4)):
        assert DEVIATION.level(t, h, {**spree, name: short}) < 0.5, name
    # the payment's own z is not asked again: a category-rare amount at z 0.9 may count
    assert DEVIATION.level(t, h, {**spree, "z": 0.9}) > 0.5
    assert DEVIATION.level(t, history(STEADY[:4], gap=timedelta(days=1)), spree) < 0.01  # 4 tx
    # eight payments within the last 8 hours: no usual day to compare the day's spending with
    assert DEVIATION.level(t, history(STEADY), spree) < 0.01


def at_second(second: float) -> datetime:
    return datetime.fromtimestamp(second, timezone.utc)


def checked(rule: Any, t: Transaction, h: UserHistory, features: dict[str, float]) -> Any:
    """The rule's reason; its level must agree (1 when it fires, else 0)."""
    reason = rule.check(t, h, features)
    assert rule.level(t, h, features) == (0.0 if reason is None else 1.0)
    return reason


def test_velocity_counts_the_transaction_itself_with_the_remembered_ones_in_the_window() -> None:
    h = UserHistory(recent_times=[0.0, 40.0, 90.0], recent_amounts=[5.0, 5.0, 5.0])
    at_100 = tx(5.0, at_second(100))
    assert checked(VelocityRule(window_seconds=60.0, max_count=3), at_100, h, {}) is not None
    assert checked(VelocityRule(window_seconds=59.0, max_count=3), at_100, h, {}) is None
    assert checked(VelocityRule(window_seconds=60.0, max_count=4), at_100, h, {}) is None


def test_velocity_counts_a_late_payment_with_the_burst_it_belongs_to() -> None:
    """A payment older than the newest (it arrived late) completes a burst in any window that
    holds it, as the burst's newest payment would have in order; the limits read alike."""
    h = UserHistory(recent_times=[0.0, 100.0, 130.0], recent_amounts=[5.0, 5.0, 40.0])
    late_at_90 = tx(5.0, at_second(90))
    reason = checked(VelocityRule(window_seconds=60.0, max_count=3), late_at_90, h, {})
    assert reason is not None and reason.details["count"] == 3  # 90, 100 and 130
    assert checked(VelocityRule(window_seconds=60.0, max_count=4), late_at_90, h, {}) is None
    by_amount = checked(VelocityRule(window_seconds=60.0, max_amount=49.0), late_at_90, h, {})
    assert by_amount is not None and by_amount.details["total"] == 50.0
    assert checked(VelocityRule(window_seconds=20.0, max_count=2), late_at_90, h, {}) is not None
    assert checked(VelocityRule(window_seconds=5.0, max_count=2), late_at_90, h, {}) is None


def test_velocity_total_must_be_strictly_over_the_amount_limit() -> None:
    h = UserHistory(recent_times=[90.0], recent_amounts=[50.0])
    at_100 = tx(50.0, at_second(100))
    assert checked(VelocityRule(window_seconds=60.0, max_amount=100.0), at_100, h, {}) is None
    reason = checked(VelocityRule(window_seconds=60.0, max_amount=99.99), at_100, h, {})
    assert reason is not None and reason.details["total"] == 100.0


def test_velocity_counts_what_the_behaviour_update_remembered() -> None:
    h = history(HABIT, gap=timedelta(seconds=20))  # five payments 20 s apart, up to T0 - 20 s
    rule = VelocityRule(window_seconds=60.0, max_count=4)
    reason = checked(rule, tx(5.0, **HOME), h, MODEL.features(h, tx(5.0, **HOME)))
    assert reason is not None and reason.details["count"] == 4  # T0 - 60, -40, -20 and T0
    later = tx(5.0, T0 + timedelta(seconds=30), **HOME)
    assert checked(rule, later, h, MODEL.features(h, later)) is None


def test_list_match_reports_the_first_list_the_transaction_is_on() -> None:
    match = ListMatch(users=frozenset({"u"}), countries=frozenset({"DE"}))
    assert match.find(tx(5.0, **HOME)) == {"matched": "user", "value": "u"}
    assert ListMatch(countries=frozenset({"DE"})).find(tx(5.0, **HOME)) == {
        "matched": "country",
        "value": "DE",
    }
    assert ListMatch(merchants=frozenset({"M1"})).find(tx(5.0)) is None  # no merchant given


def test_deny_list_alerts_and_allow_list_only_allows() -> None:
    match = ListMatch(merchants=frozenset({"M1"}))
    denied = checked(DenyListRule(match), tx(5.0, **HOME), UserHistory(), {})
    allowed = AllowListRule(match).allows(tx(5.0, **HOME), UserHistory(), {})
    assert denied is not None and denied.to_dict()["name"] == "deny_list"
    assert allowed is not None and allowed.to_dict()["name"] == "allow_list"
    assert checked(DenyListRule(match), tx(5.0, **ABROAD), UserHistory(), {}) is None
    assert not hasattr(AllowListRule(match), "check")
    assert not hasattr(AllowListRule(match), "level")


def test_expressions_see_the_raw_amount_and_utc_hour_and_weekday_over_the_features() -> None:
    h = history(HABIT)
    features = MODEL.features(h, tx(150.0, **HOME))
    features |= {"category_share": 0.0, "category_common": 0.0}  # the detector adds these
    values = expression_values(tx(150.0, **HOME), features)  # Wednesday 2024-12-04 00:00 UTC
    assert set(values) == EXPRESSION_FIELDS
    assert (values["amount"], values["hour"], values["weekday"]) == (150.0, 0.0, 2.0)
    assert values["country"] == "DE" and values["channel"] is None
    rule = ExpressionRule(
        parse("weekday == 2 and z_habit > 3 and new_merchant == 0", EXPRESSION_FIELDS)
    )
    assert checked(rule, tx(150.0, **HOME), h, features) is not None
    ordinary = MODEL.features(h, tx(22.0, **HOME))
    assert checked(rule, tx(22.0, **HOME), h, ordinary) is None
