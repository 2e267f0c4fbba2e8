"""Specification of the synthetic stream: habits, scenarios, labels, determinism."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.generator import (
    ACCOUNT_TAKEOVER,
    CARD_TESTING,
    FRAUD_SCENARIOS,
    HABIT_SPIKE,
    LARGE_AMOUNT,
    MILLISECONDS_PER_DAY,
    VELOCITY_BURST,
    GeneratorParameters,
    ScenarioGenerator,
    UserHabits,
)
from producer.records import NORMAL_SCENARIO, LabeledTransaction, epoch_ms, format_timestamp_ms

MINUTE_MS = 60_000
#: Widest gap between two transactions of one velocity or card-testing burst.
MAX_BURST_GAP_MS = 4_000


def take(params: GeneratorParameters, count: int) -> list[LabeledTransaction]:
    """The first ``count`` records of the stream ``params`` describe."""
    return list(itertools.islice(ScenarioGenerator(params), count))


def stream_bytes(records: Iterable[LabeledTransaction]) -> bytes:
    """What ``--dry-run`` would print for these records."""
    return b"".join(record.message_json() + b"\n" for record in records)


def bursts(records: list[LabeledTransaction], scenario: str) -> list[list[LabeledTransaction]]:
    """Transactions of ``scenario`` grouped per user into runs without a long pause."""
    runs: dict[str, list[list[LabeledTransaction]]] = defaultdict(list)
    for record in records:
        if record.scenario != scenario:
            continue
        user_runs = runs[record.user_id]
        if user_runs and record.timestamp_ms - user_runs[-1][-1].timestamp_ms <= MAX_BURST_GAP_MS:
            user_runs[-1].append(record)
        else:
            user_runs.append([record])
    return [run for user_runs in runs.values() for run in user_runs]


def skewness(values: list[float]) -> float:
    """Sample skewness (third standardised moment)."""
    mean = statistics.fmean(values)
    spread = statistics.pstdev(values)
    return statistics.fmean(((v - mean) / spread) ** 3 for v in values)


@pytest.fixture(scope="module")
def fraud_heavy() -> tuple[ScenarioGenerator, list[LabeledTransaction]]:
    """A stream with plenty of every scenario (30% fraud) to check what each one claims."""
    generator = ScenarioGenerator(GeneratorParameters(seed=11, users=300, fraud_share=0.3))
    return generator, list(itertools.islice(generator, 30_000))


@pytest.fixture(scope="module")
def habits_by_user(
    fraud_heavy: tuple[ScenarioGenerator, list[LabeledTransaction]],
) -> dict[str, UserHabits]:
    return {user.user_id: user for user in fraud_heavy[0].users}


def test_same_seed_gives_a_byte_identical_stream_including_timestamps() -> None:
    params = GeneratorParameters(seed=5, users=200, fraud_share=0.1)
    assert stream_bytes(take(params, 5_000)) == stream_bytes(take(params, 5_000))


def test_iterating_a_generator_again_restarts_the_identical_stream() -> None:
    generator = ScenarioGenerator(GeneratorParameters(seed=5, users=50))
    first = stream_bytes(itertools.islice(generator, 500))
    assert stream_bytes(itertools.islice(generator, 500)) == first


def test_different_seeds_give_different_streams() -> None:
    one = take(GeneratorParameters(seed=1, users=200), 1_000)
    two = take(GeneratorParameters(seed=2, users=200), 1_000)
    assert stream_bytes(one) != stream_bytes(two)
    assert [r.amount for r in one] != [r.amount for r in two]


def test_event_time_starts_at_start_time_and_never_goes_backwards() -> None:
    params = GeneratorParameters(seed=3, users=100, fraud_share=0.2)
    records = take(params, 5_000)
    start = epoch_ms(params.start_time)
    assert records[0].timestamp_ms >= start
    assert all(a.timestamp_ms <= b.timestamp_ms for a, b in itertools.pairwise(records))


def test_transaction_ids_are_unique_and_carry_the_seed(
    fraud_heavy: tuple[ScenarioGenerator, list[LabeledTransaction]],
) -> None:
    records = fraud_heavy[1]
    assert len({r.transaction_id for r in records}) == len(records)
    assert all(r.transaction_id.startswith("tx-11-") for r in records)


def test_messages_have_the_documented_fields_and_never_a_label(
    fraud_heavy: tuple[ScenarioGenerator, list[LabeledTransaction]],
) -> None:
    fields = {"transactionId", "userId", "amount", "timestamp", "merchantId", "country", "channel"}
    for record in fraud_heavy[1][:5_000]:
        raw = record.message_json()
        assert set(orjson.loads(raw)) == fields
        assert record.scenario.encode() not in raw
        assert b"fraud" not in raw.lower()
        assert b"label" not in raw.lower()


def test_timestamps_are_iso_utc_with_milliseconds() -> None:
    record = take(GeneratorParameters(seed=1, users=10), 1)[0]
    stamp = orjson.loads(record.message_json())["timestamp"]
    assert len(stamp) == len("2024-12-04T15:00:00.123Z") and stamp.endswith("Z")
    assert stamp.startswith("2024-12-04T")


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)))
def test_timestamp_format_round_trips_to_the_millisecond(moment: datetime) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=timezone.utc)
    text = format_timestamp_ms(epoch_ms(moment))
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == moment


def test_every_fraud_transaction_is_labeled_with_its_scenario(
    fraud_heavy: tuple[ScenarioGenerator, list[LabeledTransaction]],
) -> None:
    records = fraud_heavy[1]
    assert {r.scenario for r in records} == {NORMAL_SCENARIO, *FRAUD_SCENARIOS}
    assert all(r.is_fraud == (r.scenario != NORMAL_SCENARIO) for r in records)


def test_large_amount_is_above_the_rule_threshold(
    fraud_heavy: tuple[ScenarioGenerator, list[LabeledTransaction]],
) -> None:
    large = [r for r in fraud_heavy[1] if r.scenario == LARGE_AMOUNT]
    assert large
    assert all(r.amount > 10_000 for r in large)


def test_large_amount_follows_a_custom_rule_threshold() -> None:
    params = GeneratorParameters(seed=2, users=100, fraud_share=0.2, rule_threshold=2_500.0)
    records = take(params, 5_000)
    large = [r for r in records if r.scenario == LARGE_AMOUNT]
    assert large and all(r.amount > 2_500 for r in large)
    assert all(r.amount <= 2_500 for r in records if r.scenario == NORMAL_SCENARIO)


def test_habit_spike_is_at_least_ten_times_the_user_median_and_below_the_threshold(
    fraud_heavy: tuple[ScenarioGenerator, list[LabeledTransaction]],
    habits_by_user: dict[str, UserHabits],
) -> None:
    spikes = [r for r in fraud_heavy[1] if r.scenario == HABIT_SPIKE]
    assert spikes
    for record in spikes:
        median = habits_by_user[record.user_id].median_amount
        assert 10 * median <= record.amount < 10_000


def test_velocity_burst_has_at_least_eight_transactions_of_one_user_within_a_minute(
    fraud_heavy: tuple[ScenarioGenerator, list[LabeledTransaction]],
) -> None:
    runs = bursts(fraud_heavy[1], VELOCITY_BURST)
    assert runs
    for run in runs:
        assert len(run) >= 8
        assert run[-1].timestamp_ms - run[0].timestamp_ms <= MINUTE_MS


def test_card_testing_is_a_quick_run_of_tiny_amounts(
    fraud_heavy: tuple[ScenarioGenerator, list[LabeledTransaction]],
) -> None:
    runs = bursts(fraud_heavy[1], CARD_TESTING)
    assert runs
    for run in runs:
        assert len(run) >= 8
        assert all(0.5 <= r.amount <= 2.0 for r in run)
        assert all(r.channel == "online" for r in run)


def test_account_takeover_uses_a_merchant_and_a_country_the_user_never_used_before(
    fraud_heavy: tuple[ScenarioGenerator, list[LabeledTransaction]],
    habits_by_user: dict[str, UserHabits],
) -> None:
    merchants_seen: dict[str, set[str | None]] = defaultdict(set)
    countries_seen: dict[str, set[str | None]] = defaultdict(set)
    takeovers = 0
    for record in fraud_heavy[1]:
        if record.scenario == ACCOUNT_TAKEOVER:
            takeovers += 1
            habits = habits_by_user[record.user_id]
            assert record.merchant_id not in merchants_seen[record.user_id]
            assert record.merchant_id not in habits.usual_merchants
            assert record.country not in countries_seen[record.user_id]
            assert record.country != habits.home_country
            assert 5 * habits.median_amount <= record.amount < 10_000
        merchants_seen[record.user_id].add(record.merchant_id)
        countries_seen[record.user_id].add(record.country)
    assert takeovers


def test_normal_amounts_are_log_normal_around_each_users_own_median() -> None:
    generator = ScenarioGenerator(GeneratorParameters(seed=21, users=5, fraud_share=0.0))
    per_user: dict[str, list[float]] = defaultdict(list)
    for record in itertools.islice(generator, 10_000):
        per_user[record.user_id].append(record.amount)
    for user in generator.users:
        amounts = per_user[user.user_id]
        assert len(amounts) > 500
        logs = [math.log(a) for a in amounts]
        assert abs(skewness(logs)) < 0.3  # symmetric in log space
        assert skewness(amounts) > 0.5  # long right tail in linear space: not uniform
        assert statistics.median(amounts) == pytest.approx(user.median_amount, rel=0.15)
        assert statistics.pstdev(logs) == pytest.approx(user.amount_sigma, rel=0.15)


def test_users_have_different_habits() -> None:
    users = ScenarioGenerator(GeneratorParameters(seed=4, users=500)).users
    medians = [u.median_amount for u in users]
    assert min(medians) >= 5 and max(medians) <= 500
    assert max(medians) / min(medians) > 20
    assert len({u.home_country for u in users}) > 3
    assert len({u.active_start_ms for u in users}) > 3
    assert all(3 <= len(u.usual_merchants) <= 8 for u in users)


def test_normal_traffic_happens_only_in_each_users_active_hours() -> None:
    generator = ScenarioGenerator(GeneratorParameters(seed=8, users=50, fraud_share=0.0))
    habits = {u.user_id: u for u in generator.users}
    for record in itertools.islice(generator, 5_000):
        user = habits[record.user_id]
        into_day = (record.timestamp_ms - user.active_start_ms) % MILLISECONDS_PER_DAY
        assert into_day < user.active_length_ms


def test_normal_traffic_mostly_uses_the_users_usual_merchants_and_home_country() -> None:
    generator = ScenarioGenerator(GeneratorParameters(seed=9, users=100, fraud_share=0.0))
    habits = {u.user_id: u for u in generator.users}
    records = list(itertools.islice(generator, 10_000))
    usual = sum(r.merchant_id in habits[r.user_id].usual_merchants for r in records)
    home = sum(r.country == habits[r.user_id].home_country for r in records)
    assert usual / len(records) > 0.9
    assert home / len(records) > 0.97
    assert {r.channel for r in records} == {"pos", "online"}


def test_normal_amounts_never_exceed_a_lowered_cap() -> None:
    params = GeneratorParameters(seed=6, users=200, fraud_share=0.0, normal_amount_cap=100.0)
    assert max(r.amount for r in take(params, 10_000)) <= 100.0


@pytest.mark.parametrize(
    ("fraud_share", "scenarios"),
    [
        (0.02, FRAUD_SCENARIOS),
        (0.10, FRAUD_SCENARIOS),
        (0.05, (VELOCITY_BURST,)),
        (0.05, (LARGE_AMOUNT, HABIT_SPIKE)),
    ],
)
def test_fraud_share_is_approximately_honoured(
    fraud_share: float, scenarios: tuple[str, ...]
) -> None:
    params = GeneratorParameters(seed=13, users=2_000, fraud_share=fraud_share, scenarios=scenarios)
    records = take(params, 60_000)
    observed = sum(bool(r.is_fraud) for r in records) / len(records)
    assert observed == pytest.approx(fraud_share, rel=0.25)
    assert {r.scenario for r in records if r.is_fraud} == set(scenarios)


def test_no_scenarios_means_no_fraud() -> None:
    records = take(GeneratorParameters(seed=1, users=100, fraud_share=0.5, scenarios=()), 3_000)
    assert not any(r.is_fraud for r in records)


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        GeneratorParameters(scenarios=("phishing",))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    threshold=st.floats(min_value=50.0, max_value=1e6),
    fraud_share=st.floats(min_value=0.0, max_value=0.5),
)
def test_amount_bounds_hold_for_any_seed_and_threshold(
    seed: int, threshold: float, fraud_share: float
) -> None:
    params = GeneratorParameters(
        seed=seed, users=50, fraud_share=fraud_share, rule_threshold=threshold
    )
    for record in take(params, 1_500):
        assert record.amount > 0
        if record.scenario == LARGE_AMOUNT:
            assert record.amount > threshold
        else:
            assert record.amount <= threshold


def test_a_stream_started_at_any_hour_is_the_same_stream_shifted_in_time() -> None:
    """The demo starts its stream now: what it shows must not depend on the hour (it did,
    from 1 to 39 frauds in its first 1,200 transactions, and none at all now and then)."""

    def shape(start: datetime) -> list[tuple[str, float, str, int]]:
        params = GeneratorParameters(seed=7, users=200, start_time=start)
        start_ms = epoch_ms(start)
        return [
            (r.user_id, r.amount, r.scenario, r.timestamp_ms - start_ms) for r in take(params, 1200)
        ]

    midnight = datetime(2024, 12, 4, tzinfo=timezone.utc)
    for later in (timedelta(hours=7, minutes=3, milliseconds=5), timedelta(days=3, hours=19)):
        assert shape(midnight + later) == shape(midnight)
