"""Per-user profile statistics and features scaled into [0, 1]."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from dataclasses import asdict

from hypothesis import given
from hypothesis import strategies as st

from fraudstream.core.features import (
    FEATURE_NAMES,
    RECENT_COUNTRIES,
    RECENT_MERCHANTS,
    RECENT_TRANSACTIONS,
    RECENT_WINDOW_SECONDS,
    FeatureScales,
    UserProfile,
    compute_features,
    decode_profile,
    encode_profile,
    place_token,
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


def fold_places(places: list[tuple[str, str]], suspicious_last: bool = False) -> UserProfile:
    profile = UserProfile()
    for i, (merchant, country) in enumerate(places):
        extra = {"merchantId": merchant, "country": country}
        suspicious = suspicious_last and i == len(places) - 1
        update_profile(profile, 20.0, i * 3600.0, SCALES, 0, i, suspicious, extra)
    return profile


def place_features(profile: UserProfile, merchant: str, country: str) -> tuple[float, float]:
    extra = {"merchantId": merchant, "country": country}
    features = compute_features(profile, 20.0, 1e6, SCALES, extra)
    return features["new_merchant"], features["new_country"]


def test_new_merchant_and_country_are_flagged_only_against_known_places() -> None:
    profile = fold_places([("M1", "DE"), ("M2", "DE")])
    assert place_features(profile, "M1", "DE") == (0.0, 0.0)
    assert place_features(profile, "M9", "DE") == (1.0, 0.0)
    assert place_features(profile, "M9", "NG") == (1.0, 1.0)
    assert place_features(UserProfile(), "M9", "NG") == (0.0, 0.0)  # nothing known yet
    no_fields = compute_features(profile, 20.0, 1e6, SCALES)
    assert (no_fields["new_merchant"], no_fields["new_country"]) == (0.0, 0.0)


def test_suspicious_transactions_do_not_make_a_place_familiar() -> None:
    profile = fold_places([("M1", "DE"), ("M9", "NG")], suspicious_last=True)
    assert place_features(profile, "M9", "NG") == (1.0, 1.0)


def test_known_places_stay_bounded_and_the_profile_stays_under_a_kibibyte() -> None:
    many = [(f"merchant-with-a-rather-long-name-{i}" * 4, f"country-{i}") for i in range(200)]
    profile = fold_places(many)
    assert len(profile.merchants) == RECENT_MERCHANTS
    assert len(profile.countries) == RECENT_COUNTRIES
    assert len(json.dumps(profile.to_dict())) <= 1024
    newest_merchant, newest_country = many[-1]
    assert place_features(profile, newest_merchant, newest_country) == (0.0, 0.0)
    oldest_merchant, oldest_country = many[0]
    assert place_features(profile, oldest_merchant, oldest_country) == (1.0, 1.0)


def test_a_full_profile_with_real_clock_times_stays_under_a_kibibyte() -> None:
    profile = UserProfile()
    for i in range(200):
        extra = {"merchantId": f"merchant-{i}", "country": f"country-{i}"}
        update_profile(
            profile, 12345.678 + i, 1733270400.123 + i, SCALES, 3, 10**9 + i, False, extra
        )
    assert len(profile.recent_times) == RECENT_TRANSACTIONS
    assert len(json.dumps(profile.to_dict())) <= 1024


def test_recent_transactions_keep_the_newest_within_the_window_in_time_order() -> None:
    profile = UserProfile()
    moments = [0.0, 10.0, 5.0, 20.0, RECENT_WINDOW_SECONDS + 7.0]
    for i, moment in enumerate(moments):
        update_profile(profile, float(i + 1), moment, SCALES, 0, i, suspicious=(i == 1))
    assert profile.recent_times == [10.0, 20.0, RECENT_WINDOW_SECONDS + 7.0]
    assert profile.recent_amounts == [2.0, 4.0, 5.0]  # the suspicious one counts too
    now = RECENT_WINDOW_SECONDS + 7.0
    assert profile.recent_activity(now, RECENT_WINDOW_SECONDS) == (3, 11.0)
    assert profile.recent_activity(now, RECENT_WINDOW_SECONDS - 13.0) == (2, 9.0)  # from 20 s


def test_profile_from_an_older_dict_without_places_still_works() -> None:
    old = fold([10.0, 12.0]).to_dict()
    del old["merchants"], old["countries"], old["recent_times"], old["recent_amounts"]
    profile = UserProfile.from_dict(old)
    assert profile.merchants == [] and profile.countries == []
    assert profile.recent_times == [] and profile.recent_amounts == []
    update_profile(profile, 11.0, 500.0, SCALES, 0, 2, extra={"merchantId": "M1"})
    assert profile.merchants == [place_token("M1")]


def test_habit_excess_features_are_zero_for_ordinary_amounts_and_rise_for_extremes() -> None:
    profile = fold([20.0, 25.0, 18.0, 22.0, 30.0])
    usual = compute_features(profile, 24.0, 1000.0, SCALES)
    spike = compute_features(profile, 900.0, 1000.0, SCALES)
    tiny = compute_features(profile, 0.5, 1000.0, SCALES)
    assert usual["amount_above_habit"] == usual["amount_below_habit"] == 0.0
    assert spike["amount_above_habit"] > 0.9 and spike["amount_below_habit"] == 0.0
    assert tiny["amount_below_habit"] > 0.5 and tiny["amount_above_habit"] == 0.0


def test_zscore_spread_is_shrunk_towards_the_prior_while_history_is_short() -> None:
    short = fold([20.0, 20.0])  # identical amounts: own spread 0
    z = short.log_amount_zscore(60.0)
    assert z is not None and z < 3.0  # without the prior this would be infinite
    assert UserProfile().log_amount_zscore(60.0) is None


def test_velocity_is_zero_without_a_recent_transaction() -> None:
    calm = fold([5.0] * 3, gap=3600.0)
    assert compute_features(calm, 5.0, 3 * 3600.0 + 600.0, SCALES)["velocity"] < 0.01
    assert compute_features(UserProfile(), 5.0, 0.0, SCALES)["velocity"] == 0.0


def test_to_dict_has_every_field_and_copies_the_place_lists() -> None:
    profile = UserProfile(count=3, merchants=["m1", "m2"], countries=["c1"])
    data = profile.to_dict()
    assert data == asdict(profile)
    data["merchants"].append("m3")
    assert profile.merchants == ["m1", "m2"]


def test_encoded_profile_round_trips() -> None:
    profile = fold([10.0, 12.0, 9.0])
    profile.merchants = ["m1"]
    assert decode_profile(encode_profile(profile)) == profile
    assert decode_profile(None) == UserProfile()


#: Stores many encoded profiles in a fresh interpreter and prints resident bytes per entry.
_STORE_MANY = """
from fraudstream.core.features import UserProfile, encode_profile
def rss():
    return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) * 1024
profile = UserProfile(count=1, mean_amount=20.0, last_seen=1.7e9, velocity=1.0,
                      last_partition=2, last_offset=123456, merchants=['54e32711'])
before, table = rss(), {}
for i in range(200_000):
    table[f'user-{i}'] = encode_profile(profile)
print((rss() - before) / len(table))
"""


def test_a_stored_profile_costs_well_under_a_kibibyte_of_memory() -> None:
    """Regression guard: orjson's raw result held ~4 KiB each (the 1 KiB-per-user target)."""
    result = subprocess.run(
        [sys.executable, "-c", _STORE_MANY], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 1024
