"""The BankSim-like stream: a fifth labeled stream, deterministic and in event-time order.

The tolerances hold for any seed at the default size (1,000 customers, 70 days): over 40 seeds
the fraud share was 0.97-1.46 % (mean 1.19 %; the published file's 1.21 %), the share of fraud
among travel payments 0.66-0.91 and among leisure payments 0.88-1.00, the frauds' mean amount
14.6-18.5 times the legit mean (within a category with 50 frauds or more, at least 3.3 times),
and 0.81 of a customer's legitimate payments in a category went to one merchant.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from statistics import mean

import pytest

from fraudstream.core.fields import FieldMapping
from producer.banksim import (
    BANKSIM_SCENARIOS,
    BANKSIM_START_TIME,
    BanksimParameters,
    BanksimSimulator,
)
from producer.csv_replay import CsvReplay
from producer.records import (
    CSV_FRAUD_SCENARIO,
    NORMAL_SCENARIO,
    LabeledTransaction,
    epoch_ms,
)
from tests.support.simulators import assert_seeded_stream, assert_start_time_shifts

SMALL = BanksimParameters(customers=200, days=20, seed=3)
DEFAULT_SIZE = BanksimParameters(seed=3)
DAY_MS = 86_400_000
#: The columns of Kaggle's bs140513_032310.csv, in its order.
BANKSIM_HEADER = "step,customer,age,gender,zipcodeOri,merchant,zipMerchant,category,amount,fraud"
#: The worker's input mapping for that file: the day counter is the time.
BANKSIM_FIELDS = FieldMapping(
    user_id="customer",
    amount="amount",
    timestamp="step",
    merchant="merchant",
    category="category",
    timestamp_unit="d",
)


@pytest.fixture(scope="module")
def records() -> list[LabeledTransaction]:
    return list(BanksimSimulator(DEFAULT_SIZE))


def share_of_fraud(records: list[LabeledTransaction], category: str) -> float:
    labels = [bool(record.is_fraud) for record in records if record.category == category]
    return sum(labels) / len(labels)


def write_kaggle_csv(records: list[LabeledTransaction], path: Path) -> None:
    """The stream as Kaggle's file has it: quoted ids, the day as the step, age and gender
    unknown ('U', as in the file), and every zip code 28007."""

    def quoted(text: str | None) -> str:
        return f"'{text}'"

    lines = [BANKSIM_HEADER]
    for record in records:
        step = (record.timestamp_ms - epoch_ms(BANKSIM_START_TIME)) // DAY_MS
        customer, merchant = quoted(record.user_id), quoted(record.merchant_id)
        row = (step, customer, "'U'", "'U'", "'28007'", merchant, "'28007'")
        paid = (quoted(record.category), record.amount, int(bool(record.is_fraud)))
        lines.append(",".join(map(str, row + paid)))
    path.write_text("\n".join(lines) + "\n")


def test_the_same_seed_gives_the_same_stream_in_event_time_order() -> None:
    assert_seeded_stream(BanksimSimulator, SMALL, other_seed=4)


def test_the_start_time_moves_the_stream() -> None:
    later = BANKSIM_START_TIME + timedelta(days=3, hours=5)
    assert_start_time_shifts(BanksimSimulator, SMALL, BANKSIM_START_TIME, later)


def test_each_days_payments_are_spread_evenly_over_the_day() -> None:
    small = list(BanksimSimulator(SMALL))
    by_day: defaultdict[int, list[int]] = defaultdict(list)
    for record in small:
        since_start = record.timestamp_ms - epoch_ms(BANKSIM_START_TIME)
        by_day[since_start // DAY_MS].append(since_start % DAY_MS)
    assert sorted(by_day) == list(range(SMALL.days))
    for offsets in by_day.values():
        n = len(offsets)
        assert offsets == [k * DAY_MS // n for k in range(n)]


def test_fraud_is_about_one_payment_in_eighty_and_every_fraud_names_its_scenario(
    records: list[LabeledTransaction],
) -> None:
    counts = Counter(record.scenario for record in records)
    assert set(counts) == {NORMAL_SCENARIO, *BANKSIM_SCENARIOS}
    frauds = [record for record in records if record.is_fraud]
    assert 0.008 < len(frauds) / len(records) < 0.017  # the published file: 1.21 %
    assert all(record.is_fraud == (record.scenario != NORMAL_SCENARIO) for record in records)
    assert all(record.scenario in BANKSIM_SCENARIOS for record in frauds)


def test_transportation_food_and_contents_see_no_fraud(records: list[LabeledTransaction]) -> None:
    for category in ("es_transportation", "es_food", "es_contents"):
        assert share_of_fraud(records, category) == 0, category
    assert Counter(record.category for record in records).most_common(1)[0][0] == (
        "es_transportation"
    )


def test_most_travel_and_leisure_payments_are_fraud(records: list[LabeledTransaction]) -> None:
    assert share_of_fraud(records, "es_travel") > 0.5
    assert share_of_fraud(records, "es_leisure") > 0.5


def test_frauds_are_several_times_larger_on_average_and_within_their_category(
    records: list[LabeledTransaction],
) -> None:
    fraud_mean = mean(record.amount for record in records if record.is_fraud)
    legit_mean = mean(record.amount for record in records if not record.is_fraud)
    assert fraud_mean > 8 * legit_mean
    frauds = Counter(record.category for record in records if record.is_fraud)
    for category in (name for name, count in frauds.items() if count >= 50):
        amounts: dict[bool, list[float]] = {True: [], False: []}
        for record in records:
            if record.category == category:
                amounts[bool(record.is_fraud)].append(record.amount)
        assert mean(amounts[True]) > 2 * mean(amounts[False]), category


def test_customers_mostly_pay_at_one_merchant_per_category(
    records: list[LabeledTransaction],
) -> None:
    merchants: defaultdict[tuple[str, str | None], Counter[str | None]] = defaultdict(Counter)
    for record in records:
        if not record.is_fraud:
            merchants[record.user_id, record.category][record.merchant_id] += 1
    at_favourite = sum(max(counts.values()) for counts in merchants.values())
    assert 0.75 < at_favourite / sum(sum(c.values()) for c in merchants.values()) < 0.9


def test_messages_carry_merchant_category_and_country_but_no_label(
    records: list[LabeledTransaction],
) -> None:
    docs = [record.message() for record in records[:2000]]
    roles = {"transactionId", "userId", "amount", "timestamp", "merchantId", "category", "country"}
    assert all(set(doc) == roles for doc in docs)  # no channel, no place, no label
    assert all(re.fullmatch(r"C\d{9,10}", doc["userId"]) for doc in docs)
    assert all(re.fullmatch(r"M\d{9,10}", doc["merchantId"]) for doc in docs)
    assert {doc["country"] for doc in docs} == {"ES"}
    assert all(doc["category"].startswith("es_") for doc in docs)
    assert len({record.merchant_id for record in records}) <= 50


def test_written_as_kaggles_file_the_stream_replays_with_the_same_timestamps(
    tmp_path: Path,
) -> None:
    """What the CSV cannot carry differs: the transaction id (the replay numbers lines), the
    country and the fraud scenario (the file has neither); ids keep the file's quotes."""
    stream = list(BanksimSimulator(BanksimParameters(customers=60, days=20, seed=2)))
    path = tmp_path / "bs140513_032310.csv"
    write_kaggle_csv(stream, path)
    replay = CsvReplay(path, "generic", BANKSIM_START_TIME, BANKSIM_FIELDS, label_column="fraud")
    expected = [
        replace(
            record,
            transaction_id=f"csv-{line}",
            user_id=f"'{record.user_id}'",
            merchant_id=f"'{record.merchant_id}'",
            category=f"'{record.category}'",
            country=None,
            scenario=CSV_FRAUD_SCENARIO if record.is_fraud else NORMAL_SCENARIO,
        )
        for line, record in enumerate(stream, start=2)
    ]
    assert any(record.is_fraud for record in stream)
    assert list(replay) == expected


@pytest.mark.parametrize(("customers", "days"), [(0, 70), (1_000, 0)])
def test_impossible_parameters_are_refused(customers: int, days: int) -> None:
    with pytest.raises(ValueError):
        BanksimParameters(customers=customers, days=days)


def test_without_episodes_the_stream_has_no_fraud() -> None:
    honest = BanksimParameters(customers=100, days=30, seed=1, episode_probability_per_day=0)
    assert not any(record.is_fraud for record in BanksimSimulator(honest))
