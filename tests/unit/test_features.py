"""Per-user profile statistics and features scaled into [0, 1]."""

from __future__ import annotations

import math
import statistics

from hypothesis import given
from hypothesis import strategies as st

from fraudstream.features import (
    FEATURE_NAMES,
    FeatureScales,
    UserProfile,
    compute_features,
    update_profile,
)

SCALES = FeatureScales()


def fold(amounts: list[float], gap: float = 60.0) -> UserProfile:
    profile = UserProfile()
    for i, amount in enumerate(amounts):
        update_profile(profile, amount, i * gap, SCALES, 0, i)
    return profile


@given(
    history=st.lists(
        st.tuples(st.floats(0, 1e12, allow_nan=False), st.floats(-1e9, 1e10, allow_nan=False)),
        max_size=20,
    ),
    amount=st.floats(0, 1e15, allow_nan=False),
    at=st.floats(-1e9, 1e10, allow_nan=False),
)
def test_features_stay_inside_the_unit_interval(
    history: list[tuple[float, float]], amount: float, at: float
) -> None:
    profile = UserProfile()
    for i, (past_amount, past_time) in enumerate(history):
        update_profile(profile, past_amount, past_time, SCALES, 0, i, suspicious=i % 5 == 4)
    features = compute_features(profile, amount, at, SCALES)
    assert set(features) == set(FEATURE_NAMES)
    assert all(0.0 <= v <= 1.0 and math.isfinite(v) for v in features.values()), features


def test_profile_keeps_running_mean_and_variance_of_the_amount() -> None:
    amounts = [10.0, 20.0, 35.0, 5.0]
    profile = fold(amounts)
    assert profile.count == 4
    assert math.isclose(profile.mean_amount, statistics.mean(amounts))
    assert math.isclose(profile.std_amount, statistics.stdev(amounts))
    logs = [math.log1p(a) for a in amounts]
    assert math.isclose(profile.std_log, statistics.stdev(logs))


def test_suspicious_amounts_do_not_become_the_users_habit() -> None:
    profile = fold([10.0, 12.0])
    update_profile(profile, 9000.0, 500.0, SCALES, 0, 2, suspicious=True)
    assert profile.count == 2 and profile.suspicious_count == 1
    assert math.isclose(profile.mean_amount, 11.0)
    assert profile.last_seen == 500.0


def test_amount_far_above_habit_has_a_high_zscore_feature() -> None:
    profile = fold([20.0, 25.0, 18.0, 22.0, 30.0])
    usual = compute_features(profile, 22.0, 1000.0, SCALES)["amount_zscore"]
    spike = compute_features(profile, 900.0, 1000.0, SCALES)["amount_zscore"]
    assert usual < 0.6 < 0.95 < spike


def test_burst_raises_the_velocity_feature_and_it_decays() -> None:
    burst = fold([5.0] * 10, gap=2.0)
    calm = fold([5.0] * 10, gap=3600.0)
    assert compute_features(burst, 5.0, 20.0, SCALES)["velocity"] > 0.45
    assert compute_features(calm, 5.0, 36000.0, SCALES)["velocity"] < 0.2


def test_first_transaction_of_a_user_has_neutral_history_features() -> None:
    features = compute_features(UserProfile(), 50.0, 0.0, SCALES)
    assert features["amount_zscore"] == 0.5
    assert features["since_previous"] == 1.0


def test_out_of_order_event_never_moves_the_clock_back() -> None:
    profile = fold([5.0, 5.0], gap=100.0)
    update_profile(profile, 5.0, 10.0, SCALES, 0, 2)
    assert profile.last_seen == 100.0


def test_profile_round_trips_through_its_dict_and_ignores_unknown_keys() -> None:
    profile = fold([1.0, 2.0, 3.0])
    assert UserProfile.from_dict({**profile.to_dict(), "future": 1}) == profile
    assert UserProfile.from_dict(None) == UserProfile()


def test_redelivered_position_is_recognised() -> None:
    profile = fold([1.0, 2.0])  # offsets 0 and 1 on partition 0
    assert profile.has_applied(0, 1) and profile.has_applied(0, 0)
    assert not profile.has_applied(0, 2)
    assert not profile.has_applied(1, 0)
