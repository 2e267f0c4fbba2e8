"""The Sparkov-like stream: a fourth labeled stream, deterministic and in event-time order.

The tolerances hold for any seed at the default size (1,000 customers, 60 days): over 40 seeds
the fraud share was 0.41-0.59 %, the frauds' night share 0.82-0.86 (the legit 0.23) and their mean
amount 7.1-8.5 times the legit mean.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from statistics import mean

import pytest

from producer.records import NORMAL_SCENARIO, LabeledTransaction, epoch_ms
from producer.sparkov import (
    SPARKOV_CATEGORIES,
    SPARKOV_SCENARIOS,
    SPARKOV_START_TIME,
    SparkovParameters,
    SparkovSimulator,
)
from tests.support.simulators import assert_seeded_stream, assert_start_time_shifts

SMALL = SparkovParameters(customers=200, days=20, seed=3)
DEFAULT_SIZE = SparkovParameters(seed=3)
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def records() -> list[LabeledTransaction]:
    return list(SparkovSimulator(DEFAULT_SIZE))


def at_night(record: LabeledTransaction) -> bool:
    hour = record.timestamp_ms // HOUR_MS % 24
    return hour >= 22 or hour < 4


def test_the_same_seed_gives_the_same_stream_in_event_time_order() -> None:
    assert_seeded_stream(SparkovSimulator, SMALL, other_seed=4)


def test_the_start_time_moves_the_stream() -> None:
    later = SPARKOV_START_TIME + timedelta(days=7)  # the same weekdays, the same season
    assert_start_time_shifts(SparkovSimulator, SMALL, SPARKOV_START_TIME, later)


def test_fraud_is_rare_and_every_fraud_names_its_scenario(
    records: list[LabeledTransaction],
) -> None:
    counts = Counter(record.scenario for record in records)
    assert set(counts) == {NORMAL_SCENARIO, *SPARKOV_SCENARIOS}
    frauds = [record for record in records if record.is_fraud]
    assert 0.003 < len(frauds) / len(records) < 0.008  # the prototype measured ~0.5 %
    assert all(record.is_fraud == (record.scenario != NORMAL_SCENARIO) for record in records)
    assert all(record.scenario in SPARKOV_SCENARIOS for record in frauds)


def test_most_frauds_fall_at_night_and_most_legit_payments_do_not(
    records: list[LabeledTransaction],
) -> None:
    frauds = [at_night(record) for record in records if record.is_fraud]
    legit = [at_night(record) for record in records if not record.is_fraud]
    assert sum(frauds) / len(frauds) >= 0.70
    assert sum(legit) / len(legit) <= 0.35


def test_frauds_are_several_times_larger_on_average(records: list[LabeledTransaction]) -> None:
    fraud_mean = mean(record.amount for record in records if record.is_fraud)
    legit_mean = mean(record.amount for record in records if not record.is_fraud)
    assert fraud_mean > 4 * legit_mean


def test_a_card_pays_nothing_legitimate_on_its_fraud_days(
    records: list[LabeledTransaction],
) -> None:
    def day(record: LabeledTransaction) -> int:
        return (record.timestamp_ms - epoch_ms(SPARKOV_START_TIME)) // (24 * HOUR_MS)

    fraud_days = {(record.user_id, day(record)) for record in records if record.is_fraud}
    assert fraud_days
    assert not any(
        (record.user_id, day(record)) in fraud_days for record in records if not record.is_fraud
    )


def test_messages_carry_merchant_category_and_place_but_no_label(
    records: list[LabeledTransaction],
) -> None:
    docs = [record.message() for record in records[:2000]]
    assert all({"merchantId", "category", "latitude", "longitude"} <= set(doc) for doc in docs)
    assert all(doc["merchantId"].startswith("fraud_") for doc in docs)
    assert {doc["category"] for doc in docs} <= set(SPARKOV_CATEGORIES)
    assert not any("scenario" in doc or "is_fraud" in doc for doc in docs)
    channels = {record.category: record.channel for record in records}
    assert channels["shopping_net"] == "online" and channels["grocery_pos"] == "pos"
    assert channels["travel"] is None


@pytest.mark.parametrize("bad", [{"customers": 0}, {"days": 0}])
def test_impossible_parameters_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        SparkovParameters(**bad)


def test_a_one_day_stream_has_no_fraud_episode() -> None:
    one_day = SparkovParameters(customers=50, days=1, seed=1, episode_probability_per_day=0.9)
    assert not any(record.is_fraud for record in SparkovSimulator(one_day))
