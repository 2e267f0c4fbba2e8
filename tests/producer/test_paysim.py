"""The PaySim-like stream: a seventh labeled stream, deterministic and in event-time order.

The tolerances hold for any seed at the default size (1,000 users, 70 days): over 40 seeds
there were 209,160-211,218 transactions, 216-374 of them fraud (0.103-0.177 %, mean 0.132 %;
the published file's 0.129 %), each type's share within 1 % of the file's (DEBIT's 0.62-0.69 %
within 7 %), each type's median amount within 10 % of the file's, the frauds' median amount
330,000-720,000, 99.8 % of the origins seen once, 3.3 % of the transactions and 20-46 % of the
frauds between 00:00 and 07:00.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from statistics import median

import pytest

from producer.paysim import (
    CASH_OUT,
    LARGEST_FRAUD_TRANSFER,
    PAYMENT,
    PAYSIM_SCENARIOS,
    PAYSIM_START_TIME,
    PAYSIM_TYPES,
    TRANSFER,
    PaysimParameters,
    PaysimSimulator,
)
from producer.records import NORMAL_SCENARIO, LabeledTransaction, epoch_ms
from tests.support.simulators import assert_seeded_stream, assert_start_time_shifts

SMALL = PaysimParameters(users=100, days=5, seed=3)
SEEDS = (1, 2, 3)
HOUR_MS = 3_600_000
#: The published file's fraud share: 8,213 of 6,362,620 transactions.
PUBLISHED_FRAUD_SHARE = 8_213 / 6_362_620


@pytest.fixture(scope="module")
def streams() -> dict[int, list[LabeledTransaction]]:
    """The default-size stream of each of SEEDS (about 210,000 transactions each)."""
    return {seed: list(PaysimSimulator(PaysimParameters(seed=seed))) for seed in SEEDS}


@pytest.fixture(scope="module")
def records(streams: dict[int, list[LabeledTransaction]]) -> list[LabeledTransaction]:
    """Seed 1's stream: three of its balances are above 10 M."""
    return streams[1]


def test_the_same_seed_gives_the_same_stream_in_event_time_order() -> None:
    small = assert_seeded_stream(PaysimSimulator, SMALL, other_seed=4)
    assert [record.transaction_id for record in small[:2]] == ["ps-3-000000000", "ps-3-000000001"]


def test_the_start_time_moves_the_stream_and_every_transaction_falls_in_its_days() -> None:
    later = PAYSIM_START_TIME + timedelta(days=3, hours=5)
    first = assert_start_time_shifts(PaysimSimulator, SMALL, PAYSIM_START_TIME, later)
    start = epoch_ms(PAYSIM_START_TIME)
    assert start <= first[0].timestamp_ms and first[-1].timestamp_ms < start + 5 * 24 * HOUR_MS


def test_the_default_size_is_about_three_transactions_a_day_per_user(
    streams: dict[int, list[LabeledTransaction]],
) -> None:
    for seed, stream in streams.items():
        assert 205_000 < len(stream) < 215_000, seed  # 3 x 1,000 users x 70 days
        assert sum(bool(record.is_fraud) for record in stream) >= 200, seed


@pytest.mark.parametrize("seed", SEEDS)
def test_each_type_has_its_share_of_the_published_file(
    streams: dict[int, list[LabeledTransaction]], seed: int
) -> None:
    stream = streams[seed]
    counts = Counter(record.channel for record in stream)
    assert set(counts) == {kind.name for kind in PAYSIM_TYPES}
    for kind in PAYSIM_TYPES:
        assert 100 * counts[kind.name] / len(stream) == pytest.approx(kind.share, rel=0.1)


@pytest.mark.parametrize("seed", SEEDS)
def test_fraud_is_about_one_transaction_in_eight_hundred(
    streams: dict[int, list[LabeledTransaction]], seed: int
) -> None:
    stream = streams[seed]
    frauds = sum(bool(record.is_fraud) for record in stream)
    assert frauds / len(stream) == pytest.approx(PUBLISHED_FRAUD_SHARE, abs=0.0005)


def test_frauds_are_transfers_and_cash_outs_in_equal_numbers(
    records: list[LabeledTransaction],
) -> None:
    assert all(record.is_fraud == (record.scenario != NORMAL_SCENARIO) for record in records)
    frauds = Counter((record.channel, record.scenario) for record in records if record.is_fraud)
    assert set(frauds) == {(TRANSFER, "transfer"), (CASH_OUT, "cash_out")}
    assert set(PAYSIM_SCENARIOS) == {"transfer", "cash_out"}
    assert frauds[TRANSFER, "transfer"] == frauds[CASH_OUT, "cash_out"]


def test_every_fraud_transfer_is_cashed_out_by_its_mule_within_hours(
    records: list[LabeledTransaction],
) -> None:
    """The mule (the transfer's destination) cashes out the same amount, at most 3 hours on."""
    cash_outs = [r for r in records if r.is_fraud and r.channel == CASH_OUT]
    unmatched = Counter((r.user_id, r.amount) for r in cash_outs)
    for transfer in (r for r in records if r.is_fraud and r.channel == TRANSFER):
        match = [
            r
            for r in cash_outs
            if r.user_id == transfer.merchant_id
            and r.amount == transfer.amount
            and 0 <= r.timestamp_ms - transfer.timestamp_ms <= 3 * HOUR_MS
        ]
        assert match, transfer
        unmatched[transfer.merchant_id, transfer.amount] -= 1
    assert set(unmatched.values()) == {0}  # one cash-out for each transfer


def test_a_takeover_moves_the_whole_balance_in_transfers_of_at_most_ten_million(
    records: list[LabeledTransaction],
) -> None:
    amounts = [record.amount for record in records if record.is_fraud]
    assert max(amounts) <= LARGEST_FRAUD_TRANSFER
    assert 250_000 < median(amounts) < 800_000  # the published file's: ~440,000
    by_victim = Counter(r.user_id for r in records if r.is_fraud and r.channel == TRANSFER)
    split = {victim: transfers for victim, transfers in by_victim.items() if transfers > 1}
    assert split  # a balance above 10 M: all but the last transfer move exactly 10 M
    for victim, transfers in split.items():
        moved = sorted(r.amount for r in records if r.is_fraud and r.user_id == victim)
        assert moved[1:] == [LARGEST_FRAUD_TRANSFER] * (transfers - 1)


def test_each_types_median_amount_is_near_the_published_one(
    records: list[LabeledTransaction],
) -> None:
    for kind in PAYSIM_TYPES:
        amounts = [record.amount for record in records if record.channel == kind.name]
        assert median(amounts) == pytest.approx(kind.median, rel=0.15), kind.name
    assert all(round(record.amount, 2) == record.amount > 0 for record in records[:5000])


def test_almost_every_origin_transacts_once(records: list[LabeledTransaction]) -> None:
    origins = Counter(record.user_id for record in records)
    assert sum(count == 1 for count in origins.values()) / len(origins) > 0.99


def test_payments_go_to_merchants_and_the_other_types_to_recurring_customer_accounts(
    records: list[LabeledTransaction],
) -> None:
    merchants = Counter(r.merchant_id for r in records if r.channel == PAYMENT)
    customers = Counter(r.merchant_id for r in records if r.channel != PAYMENT)
    assert all(re.fullmatch(r"M\d{1,10}", name or "") for name in merchants)
    assert all(re.fullmatch(r"C\d{1,10}", name or "") for name in customers)
    assert 2 < sum(merchants.values()) / len(merchants) < 5  # "a few times" each
    assert 4 < sum(customers.values()) / len(customers) < 10


def test_most_transactions_are_in_the_day_and_frauds_are_not(
    records: list[LabeledTransaction],
) -> None:
    """The daily cycle: 3 % of the transactions between 00:00 and 07:00; frauds come at an even
    rate (7/24 of them then), so at night they are a larger share."""
    night = [record for record in records if record.timestamp.hour < 7]
    frauds = [record for record in records if record.is_fraud]
    assert len(night) / len(records) < 0.05
    assert sum(bool(record.is_fraud) for record in night) / len(frauds) > 0.15
    night_share = sum(bool(r.is_fraud) for r in night) / len(night)
    assert night_share > 5 * len(frauds) / len(records)


def test_messages_carry_the_destination_and_the_type_but_no_place_category_or_label(
    records: list[LabeledTransaction],
) -> None:
    docs = [record.message() for record in records[:2000]]
    roles = {"transactionId", "userId", "amount", "timestamp", "merchantId", "channel"}
    assert all(set(doc) == roles for doc in docs)
    assert all(re.fullmatch(r"C\d{1,10}", doc["userId"]) for doc in docs)
    assert {doc["channel"] for doc in docs} == {kind.name for kind in PAYSIM_TYPES}


@pytest.mark.parametrize(
    ("users", "days", "fraud_share"), [(0, 70, 0.00129), (1_000, 0, 0.00129), (10, 10, 1.0)]
)
def test_impossible_parameters_are_refused(users: int, days: int, fraud_share: float) -> None:
    with pytest.raises(ValueError):
        PaysimParameters(users=users, days=days, fraud_share=fraud_share)


def test_without_a_fraud_share_the_stream_has_no_fraud() -> None:
    honest = PaysimParameters(users=100, days=10, seed=1, fraud_share=0)
    assert not any(record.is_fraud for record in PaysimSimulator(honest))
