"""Specification of the handbook simulator and of delayed fraud labels.

The reference figures are those the handbook's notebook prints for its dataset (chapter
"Simulated dataset", 5,000 customers, 10,000 terminals, 183 days from 2018-04-01): 1,754,155
transactions; 14,681 frauds (0.8369 %), of which, by final scenario label, 973 amount > 220
(6.63 %), 9,077 compromised terminals (61.83 %) and 4,631 compromised customers (31.54 %).
Tolerances are about four times the spread we measured between seeds (30 seeds at full size,
1,000 at the reduced size), so they hold for any seed, not just the one tested.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from fraudstream.arguments import parse_duration_ms
from fraudstream.local.tansu import TansuBroker
from producer.handbook import (
    AMOUNT_CODE,
    CUSTOMER_CODE,
    HANDBOOK_AMOUNT,
    HANDBOOK_CUSTOMER,
    HANDBOOK_SCENARIOS,
    HANDBOOK_START_TIME,
    HANDBOOK_TERMINAL,
    MILLISECONDS_PER_DAY,
    NORMAL_CODE,
    SCENARIO_BY_CODE,
    TERMINAL_CODE,
    HandbookDay,
    HandbookParameters,
    HandbookSimulator,
    compromises_on_day,
)
from producer.kafka import produce, produce_to_stream
from producer.labels import DelayedLabels, FraudLabel
from producer.records import NORMAL_SCENARIO, LabeledTransaction, epoch_ms, format_timestamp_ms
from tests.support.kafka import read_records

REPO_ROOT = Path(__file__).resolve().parents[2]

# --- the handbook's published figures ---------------------------------------------------------
HANDBOOK_TRANSACTIONS = 1_754_155
HANDBOOK_FRAUDS = {HANDBOOK_AMOUNT: 973, HANDBOOK_TERMINAL: 9077, HANDBOOK_CUSTOMER: 4631}
HANDBOOK_FRAUD_TOTAL = 14_681
HANDBOOK_DAYS = 183
#: The notebook draws compromises for days 0..181 (``range(TX_TIME_DAYS.max())``).
HANDBOOK_COMPROMISE_DRAW_DAYS = 182

SMALL = HandbookParameters(customers=300, terminals=600, days=20, seed=5)
REDUCED = HandbookParameters(customers=500, terminals=1000, days=60)
REDUCED_SEEDS = range(20)
DAY = timedelta(days=1)


def scenario_counts(days: Iterator[HandbookDay]) -> tuple[int, Counter[str]]:
    """Transactions, and frauds per scenario, of a columnar stream."""
    total, codes = 0, np.zeros(len(SCENARIO_BY_CODE), dtype=np.int64)
    for day in days:
        total += len(day)
        codes += np.bincount(day.scenario, minlength=len(SCENARIO_BY_CODE))
    return total, Counter({name: int(codes[i]) for i, name in enumerate(SCENARIO_BY_CODE) if i})


def compromised_share(
    per_day: float, duration: int, population: int, days: int, draw_days: int | None = None
) -> float:
    """Share of the population compromised on an average observed day (ramp-up included)."""
    active = sum(
        compromises_on_day(day, per_day) * min(duration, days - day)
        for day in range(days if draw_days is None else draw_days)
    )
    return active / (population * days)


def expected_rates(params: HandbookParameters) -> dict[str, float]:
    """Fraud per transaction of each scenario, scaled from the handbook's figures to ``params``.

    Scenario 1 depends on neither size nor length. Scenarios 2 and 3 are proportional to the
    share of terminals (customers) compromised on an average day, which the first 28 (14)
    days of ramp-up lower more in a short stream than in the handbook's 183 days.
    """
    draw_days = HANDBOOK_COMPROMISE_DRAW_DAYS
    handbook_terminals = compromised_share(2, 28, 10_000, HANDBOOK_DAYS, draw_days)
    handbook_customers = compromised_share(3, 14, 5000, HANDBOOK_DAYS, draw_days)
    terminals = compromised_share(
        params.terminal_compromises_per_day, 28, params.terminals, params.days
    )
    customers = compromised_share(
        params.customer_compromises_per_day, 14, params.customers, params.days
    )
    published = {name: n / HANDBOOK_TRANSACTIONS for name, n in HANDBOOK_FRAUDS.items()}
    return {
        HANDBOOK_AMOUNT: published[HANDBOOK_AMOUNT],
        HANDBOOK_TERMINAL: published[HANDBOOK_TERMINAL] * terminals / handbook_terminals,
        HANDBOOK_CUSTOMER: published[HANDBOOK_CUSTOMER] * customers / handbook_customers,
    }


def run_producer(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``python -m producer`` from the repository root, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "producer", *args], cwd=REPO_ROOT, capture_output=True
    )


def dry_run(*args: str) -> bytes:
    """What ``--dry-run`` prints (labels included when asked for)."""
    result = run_producer("--dry-run", "--rate", "0", "--quiet", *args)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@pytest.fixture(scope="module")
def small_records() -> list[LabeledTransaction]:
    return list(HandbookSimulator(SMALL))


# --- fraud rates against the handbook ---------------------------------------------------------


def test_default_set_reproduces_the_handbooks_size_and_fraud_rates() -> None:
    total, frauds = scenario_counts(HandbookSimulator().days())
    fraud_total = sum(frauds.values())
    # 30 seeds: 1.742M..1.805M transactions; the handbook's own draw sits 1.1 % below our mean.
    assert abs(total / HANDBOOK_TRANSACTIONS - 1) <= 0.04
    # Seeds: 0.844 % +- 0.011 (sd) against the handbook's 0.8369 %.
    assert fraud_total / total == pytest.approx(
        HANDBOOK_FRAUD_TOTAL / HANDBOOK_TRANSACTIONS, abs=5e-4
    )
    # Seeds (sd): amount 6.73 +- 0.35 %, terminal 61.2 +- 0.7 %, customer 32.1 +- 0.8 % of frauds.
    tolerance = {HANDBOOK_AMOUNT: 0.015, HANDBOOK_TERMINAL: 0.03, HANDBOOK_CUSTOMER: 0.03}
    for name, published in HANDBOOK_FRAUDS.items():
        share = frauds[name] / fraud_total
        assert share == pytest.approx(published / HANDBOOK_FRAUD_TOTAL, abs=tolerance[name]), name
    assert frauds[HANDBOOK_TERMINAL] > frauds[HANDBOOK_CUSTOMER] > frauds[HANDBOOK_AMOUNT]


def test_reduced_set_keeps_the_handbooks_rates_scaled_to_its_size_and_length() -> None:
    total, frauds = 0, Counter[str]()
    for seed in REDUCED_SEEDS:
        seed_total, seed_frauds = scenario_counts(
            HandbookSimulator(replace(REDUCED, seed=seed)).days()
        )
        total += seed_total
        frauds += seed_frauds
    expected = expected_rates(REDUCED)  # 0.74 % fraud: 60 days ramp up less of it
    fraud_total = sum(frauds.values())
    # Per seed (1,000 seeds): 0.746 +- 0.109 % fraud; pooled over 20 seeds the sd is 0.024.
    assert fraud_total / total == pytest.approx(sum(expected.values()), abs=1e-3)
    # Pooled sd of the shares: amount 0.4, terminal 1.5, customer 1.3 percentage points.
    tolerance = {HANDBOOK_AMOUNT: 0.025, HANDBOOK_TERMINAL: 0.06, HANDBOOK_CUSTOMER: 0.06}
    for name, rate in expected.items():
        share = frauds[name] / fraud_total
        assert share == pytest.approx(rate / sum(expected.values()), abs=tolerance[name]), name


def test_the_record_stream_is_the_columnar_stream(small_records: list[LabeledTransaction]) -> None:
    total, frauds = scenario_counts(HandbookSimulator(SMALL).days())
    assert len(small_records) == total
    by_scenario = Counter(record.scenario for record in small_records)
    assert {name: by_scenario[name] for name in HANDBOOK_SCENARIOS} == dict(frauds)
    assert set(by_scenario) <= {NORMAL_SCENARIO, *HANDBOOK_SCENARIOS}
    assert all(record.is_fraud == (record.scenario != NORMAL_SCENARIO) for record in small_records)


# --- the simulated process --------------------------------------------------------------------


def test_records_are_in_event_time_order_within_the_simulated_days(
    small_records: list[LabeledTransaction],
) -> None:
    start = epoch_ms(SMALL.start_time)
    stamps = [record.timestamp_ms for record in small_records]
    assert stamps == sorted(stamps)
    assert start < stamps[0] and stamps[-1] < start + SMALL.days * MILLISECONDS_PER_DAY
    assert all((stamp - start) % MILLISECONDS_PER_DAY > 0 for stamp in stamps)


def test_times_of_day_are_normal_around_noon(small_records: list[LabeledTransaction]) -> None:
    start = epoch_ms(SMALL.start_time)
    seconds = np.array([(r.timestamp_ms - start) % MILLISECONDS_PER_DAY for r in small_records])
    seconds = seconds / 1000
    assert seconds.mean() == pytest.approx(43_200, abs=600)
    # sd 20,000 s, truncated to the day (+-2.16 sd): 20,000 x 0.91 = 18,200 s.
    assert seconds.std() == pytest.approx(18_200, rel=0.05)


def test_same_seed_same_stream_other_seed_other_stream(
    small_records: list[LabeledTransaction],
) -> None:
    again = HandbookSimulator(SMALL)
    assert list(again) == small_records
    assert list(again) == small_records  # iterating again restarts the same stream
    other = list(itertools.islice(HandbookSimulator(replace(SMALL, seed=6)), 200))
    assert [r.message_json() for r in other] != [r.message_json() for r in small_records[:200]]


def test_messages_carry_customer_terminal_and_its_place_but_no_label(
    small_records: list[LabeledTransaction],
) -> None:
    sim = HandbookSimulator(SMALL)
    xy = sim.population.terminal_xy
    for number, record in enumerate(small_records[:500]):
        doc = record.message()
        assert set(doc) == {
            "transactionId",
            "userId",
            "amount",
            "timestamp",
            "merchantId",
            "longitude",  # the terminal's x on the grid, read by the worker's default mapping
            "latitude",  # and its y
        }
        assert doc["transactionId"] == f"hb-{SMALL.seed}-{number:09d}"
        stamp = datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00"))
        assert epoch_ms(stamp) == record.timestamp_ms
        terminal = int(doc["merchantId"])
        assert (doc["longitude"], doc["latitude"]) == pytest.approx(tuple(xy[terminal]), abs=1e-4)
        assert terminal in sim.population.terminals_of(int(doc["userId"]))
        assert record.ground_truth()["scenario"] == record.scenario


def test_customers_use_exactly_the_terminals_within_the_radius() -> None:
    population = HandbookSimulator(SMALL).population
    assert population.mean_amount.min() >= 5 and population.mean_amount.max() <= 100
    assert np.allclose(population.std_amount, population.mean_amount / 2)
    assert 0 <= population.transactions_per_day.min() <= population.transactions_per_day.max() <= 4
    distances = np.hypot(
        *(population.customer_xy[:, None, :] - population.terminal_xy[None, :, :]).transpose(
            2, 0, 1
        )
    )
    for customer in range(SMALL.customers):
        expected = np.flatnonzero(distances[customer] < SMALL.radius)
        assert population.terminals_of(customer).tolist() == expected.tolist()


def test_legitimate_amounts_follow_each_customers_profile() -> None:
    sim = HandbookSimulator(replace(SMALL, days=60))
    population = sim.population
    amounts: dict[int, list[float]] = {}
    for day in sim.days():
        normal = day.scenario == NORMAL_CODE
        for customer, amount in zip(day.customer[normal], day.amount[normal], strict=True):
            amounts.setdefault(int(customer), []).append(float(amount))
    assert min(min(values) for values in amounts.values()) >= 0
    busy = [c for c, values in amounts.items() if len(values) >= 150]
    assert len(busy) > 50
    for customer in busy:
        mean = population.mean_amount[customer]
        # Negative draws become uniform in [0, 2 x mean]: the mean stays about the same.
        assert np.mean(amounts[customer]) == pytest.approx(mean, rel=0.2)


def test_fraud_labels_follow_the_handbooks_rules() -> None:
    params = replace(REDUCED, days=40)
    customer_hits = customer_transactions = 0
    for day in HandbookSimulator(params).days():
        on_terminal = np.isin(day.terminal, day.compromised_terminals)
        on_customer = np.isin(day.customer, day.compromised_customers)
        scenario = day.scenario
        assert np.all(scenario[on_terminal] != NORMAL_CODE)
        assert np.all(np.isin(scenario[on_terminal], (TERMINAL_CODE, CUSTOMER_CODE)))
        assert np.all(on_terminal[scenario == TERMINAL_CODE])
        assert np.all(on_customer[scenario == CUSTOMER_CODE])
        amount_rule = (scenario == NORMAL_CODE) | (scenario == AMOUNT_CODE)
        assert np.all((day.amount[amount_rule] > 220) == (scenario[amount_rule] == AMOUNT_CODE))
        customer_hits += int(np.sum(scenario == CUSTOMER_CODE))
        customer_transactions += int(np.sum(on_customer))
    # A third of a compromised customer's transactions: binomial sd here is about 1.5 points.
    assert customer_hits / customer_transactions == pytest.approx(1 / 3, abs=0.07)


def test_customer_frauds_multiply_the_amount_the_customer_would_have_paid() -> None:
    params = replace(REDUCED, days=30)
    plain = HandbookSimulator(replace(params, customer_fraud_multiplier=1.0)).days()
    for fivefold, original in zip(HandbookSimulator(params).days(), plain, strict=True):
        assert np.array_equal(fivefold.scenario, original.scenario)
        stolen = fivefold.scenario == CUSTOMER_CODE
        assert np.allclose(fivefold.amount[stolen], np.round(original.amount[stolen] * 5, 2))
        assert np.array_equal(fivefold.amount[~stolen], original.amount[~stolen])


def compromise_lengths(days: list[HandbookDay], column: str) -> list[int]:
    """Lengths, in days, of every compromise that ended before the stream did."""
    since: dict[int, int] = {}
    previous: set[int] = set()
    lengths = []
    for day in days:
        current = set(getattr(day, column).tolist())
        since.update((entered, day.day) for entered in current - previous)
        lengths += [day.day - since[left] for left in previous - current]
        previous = current
    return lengths


def test_compromises_last_28_and_14_days() -> None:
    params = replace(
        SMALL, days=60, terminals_compromised_per_day=2, customers_compromised_per_day=3
    )
    days = list(HandbookSimulator(params).days())
    for day in days:
        assert len(day.compromised_terminals) <= 2 * min(day.day + 1, 28)
        assert len(day.compromised_customers) <= 3 * min(day.day + 1, 14)
    assert max(len(day.compromised_terminals) for day in days) > 40
    # A terminal (card) drawn again while compromised stays so longer: 28 (14) is the least.
    terminal_lengths = compromise_lengths(days, "compromised_terminals")
    customer_lengths = compromise_lengths(days, "compromised_customers")
    assert min(terminal_lengths) == 28 and Counter(terminal_lengths).most_common(1)[0][0] == 28
    assert min(customer_lengths) == 14 and Counter(customer_lengths).most_common(1)[0][0] == 14


def test_daily_compromises_scale_with_the_population() -> None:
    assert [compromises_on_day(day, 2.0) for day in range(5)] == [2] * 5
    assert sum(compromises_on_day(day, 0.2) for day in range(60)) == 12
    assert [day for day in range(12) if compromises_on_day(day, 0.2)] == [2, 7]
    assert HandbookParameters().terminal_compromises_per_day == 2
    assert HandbookParameters().customer_compromises_per_day == 3
    assert REDUCED.terminal_compromises_per_day == pytest.approx(0.2)
    assert replace(REDUCED, terminals_compromised_per_day=2).terminal_compromises_per_day == 2


def test_start_time_moves_the_whole_stream() -> None:
    later = HANDBOOK_START_TIME + timedelta(days=3, hours=5)
    first = next(iter(HandbookSimulator(SMALL)))
    moved = next(iter(HandbookSimulator(replace(SMALL, start_time=later))))
    assert moved.timestamp_ms - first.timestamp_ms == epoch_ms(later) - epoch_ms(SMALL.start_time)
    assert moved.amount == first.amount


@pytest.mark.parametrize(
    "bad",
    [{"customers": 0}, {"terminals": 0}, {"days": 0}, {"radius": 0}, {"customer_fraud_share": 2}],
)
def test_impossible_parameters_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        HandbookParameters(**bad)


# --- delayed labels ---------------------------------------------------------------------------


def tx(number: int, at_ms: int, fraud: bool = True, user: str = "u1") -> LabeledTransaction:
    scenario = HANDBOOK_TERMINAL if fraud else NORMAL_SCENARIO
    return LabeledTransaction(f"t{number}", user, 10.0, at_ms, scenario, fraud)


def test_a_label_is_not_released_before_its_delay() -> None:
    queue = DelayedLabels(delay_ms=7 * MILLISECONDS_PER_DAY)
    assert queue.observe(tx(1, 1000)) == []
    due = 1000 + 7 * MILLISECONDS_PER_DAY
    assert queue.release(due - 1) == []
    assert queue.pending == 1
    assert queue.release(due) == [FraudLabel("t1", "u1", due)]
    assert queue.release(due + 1) == [] and queue.pending == 0


def test_observe_releases_what_the_new_event_time_reaches_before_queueing_the_record() -> None:
    queue = DelayedLabels(delay_ms=0)
    assert queue.observe(tx(1, 100)) == []  # its own label follows it, never precedes it
    assert [label.transaction_id for label in queue.observe(tx(2, 100))] == ["t1"]
    assert [label.transaction_id for label in queue.observe(tx(3, 250, fraud=False))] == ["t2"]
    assert queue.pending == 0


def test_only_frauds_get_labels_and_they_come_out_in_label_time_order() -> None:
    queue = DelayedLabels(delay_ms=50)
    for number, (at, fraud) in enumerate([(10, True), (20, False), (5, True), (30, True)]):
        queue.add(tx(number, at, fraud))
    assert [label.transaction_id for label in queue.release(80)] == ["t2", "t0", "t3"]
    assert queue.frauds == 3 and queue.unreported == 0


def test_unlabeled_records_get_no_label() -> None:
    queue = DelayedLabels(delay_ms=0)
    queue.add(LabeledTransaction("t1", "u1", 1.0, 0, "unlabeled", None))
    assert queue.flush() == [] and queue.frauds == 0


@pytest.mark.parametrize("share", [0.0, 0.25, 0.9, 1.0])
def test_the_share_of_reported_frauds_is_respected(share: float) -> None:
    frauds = 4000
    queue = DelayedLabels(delay_ms=1, share=share, seed=3)
    for number in range(frauds):
        queue.add(tx(number, number))
    reported = len(queue.flush())
    assert reported + queue.unreported == frauds
    sd = math.sqrt(frauds * share * (1 - share))
    assert abs(reported - share * frauds) <= 4 * sd  # exact at 0 and 1


def test_the_reported_frauds_depend_only_on_the_seed() -> None:
    def reported(seed: int) -> list[str]:
        queue = DelayedLabels(delay_ms=0, share=0.5, seed=seed)
        for number in range(200):
            queue.add(tx(number, number))
        return [label.transaction_id for label in queue.flush()]

    assert reported(1) == reported(1) != reported(2)


def test_label_delays_spread_between_the_shortest_and_the_longest_and_keep_the_share() -> None:
    """Chargebacks come days to weeks late: each fraud's delay drawn in [delay, max], the
    same frauds reported as with one delay, and labels still released in labeledAt order."""
    day = MILLISECONDS_PER_DAY

    def queue_of(max_delay_ms: int | None) -> DelayedLabels:
        queue = DelayedLabels(2 * day, share=0.5, seed=4, max_delay_ms=max_delay_ms)
        for number in range(2000):
            queue.add(tx(number, number * 1000))
        return queue

    spread, fixed = queue_of(30 * day).flush(), queue_of(None).flush()
    assert {label.transaction_id for label in spread} == {label.transaction_id for label in fixed}
    start = {f"t{number}": number * 1000 for number in range(2000)}
    delays = [label.labeled_at_ms - start[label.transaction_id] for label in spread]
    assert min(delays) >= 2 * day and max(delays) <= 30 * day
    assert min(delays) < 4 * day and max(delays) > 28 * day  # spread over the whole range
    released = [label.labeled_at_ms for label in spread]
    assert released == sorted(released)
    with pytest.raises(ValueError, match="max_delay_ms"):
        DelayedLabels(2 * day, max_delay_ms=day)


def test_label_message_is_the_chargeback_json_keyed_by_user() -> None:
    label = FraudLabel(
        "hb-42-000000007", "596", epoch_ms(datetime(2018, 4, 8, 12, tzinfo=timezone.utc))
    )
    assert label.key == b"596"
    assert orjson.loads(label.message_json()) == {
        "transactionId": "hb-42-000000007",
        "userId": "596",
        "label": "fraud",
        "labeledAt": "2018-04-08T12:00:00.000Z",
        "source": "chargeback",
    }


@pytest.mark.parametrize(
    ("text", "ms"),
    [("7d", 604_800_000), ("36h", 129_600_000), ("90m", 5_400_000), ("30s", 30_000),
     ("500ms", 500), ("2w", 1_209_600_000), ("1.5h", 5_400_000), ("10", 10_000), ("0", 0)],
)  # fmt: skip
def test_durations_take_a_unit(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "7 days", "-1d", "d", "1y"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(text)


def test_stream_output_puts_each_label_just_before_the_first_transaction_past_it() -> None:
    records = list(HandbookSimulator(replace(REDUCED, days=20)))
    out = io.BytesIO()
    summary = asyncio.run(
        produce_to_stream(records, out, labels=DelayedLabels(MILLISECONDS_PER_DAY, seed=1))
    )
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    stamp = {r.transaction_id: r.timestamp_ms for r in records}
    last_tx_ms: int | None = None
    labeled: list[str] = []
    for position, doc in enumerate(lines):
        if "label" not in doc:
            last_tx_ms = stamp[doc["transactionId"]]
            continue
        labeled_at = epoch_ms(datetime.fromisoformat(doc["labeledAt"].replace("Z", "+00:00")))
        assert labeled_at == stamp[doc["transactionId"]] + MILLISECONDS_PER_DAY
        assert last_tx_ms is not None and last_tx_ms < labeled_at
        following = next(d for d in lines[position:] if "label" not in d)
        assert stamp[following["transactionId"]] >= labeled_at
        labeled.append(doc["transactionId"])
    last_ms = records[-1].timestamp_ms
    frauds = [r for r in records if r.is_fraud]
    expected = [
        r.transaction_id for r in frauds if r.timestamp_ms + MILLISECONDS_PER_DAY <= last_ms
    ]
    assert labeled == expected
    assert summary.sent == len(records)
    assert (summary.labels_sent, summary.labels_pending) == (
        len(expected),
        len(frauds) - len(expected),
    )
    assert "fraud labels:" in summary.describe()


# --- command line -----------------------------------------------------------------------------

HANDBOOK_OPTIONS = ("--generator", "handbook", "--customers", "300", "--terminals", "600")


def test_command_line_prints_the_handbook_stream() -> None:
    out = dry_run(*HANDBOOK_OPTIONS, "--days", "5", "--seed", "5")
    expected = HandbookSimulator(replace(SMALL, days=5))
    assert out == b"".join(record.message_json() + b"\n" for record in expected)
    assert dry_run(*HANDBOOK_OPTIONS, "--days", "5", "--seed", "5") == out


def test_command_line_handbook_ground_truth_names_the_handbook_scenarios(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    dry_run(*HANDBOOK_OPTIONS, "--days", "30", "--ground-truth", str(truth))
    lines = [orjson.loads(line) for line in truth.read_bytes().splitlines()]
    assert {line["scenario"] for line in lines} == {NORMAL_SCENARIO, *HANDBOOK_SCENARIOS}


def test_command_line_labels_are_off_unless_a_delay_is_given() -> None:
    plain = dry_run(*HANDBOOK_OPTIONS, "--days", "30")
    assert b'"labeledAt"' not in plain
    result = run_producer(
        "--dry-run", "--rate", "0", *HANDBOOK_OPTIONS, "--days", "30", "--label-delay", "2d"
    )
    assert result.returncode == 0, result.stderr.decode()
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    labels = [doc for doc in lines if "labeledAt" in doc]
    assert labels and all(doc["label"] == "fraud" for doc in labels)
    assert [doc for doc in lines if "labeledAt" not in doc] == [
        orjson.loads(line) for line in plain.splitlines()
    ]
    assert "fraud labels:" in result.stderr.decode()


def test_command_line_refuses_a_malformed_label_delay_or_share() -> None:
    for option in (("--label-delay", "soon"), ("--label-share", "1.5")):
        result = run_producer("--dry-run", "--generator", "handbook", *option)
        assert result.returncode == 2


# --- against a real broker --------------------------------------------------------------------


def test_produce_publishes_due_labels_to_the_labels_topic(broker: TansuBroker) -> None:
    records = list(HandbookSimulator(replace(REDUCED, days=15, seed=8)))
    delay = 3 * MILLISECONDS_PER_DAY
    summary = asyncio.run(
        produce(
            records,
            bootstrap=broker.bootstrap,
            topic="handbook-input",
            labels=DelayedLabels(delay, share=0.5, seed=8),
            labels_topic="handbook-labels",
        )
    )
    assert (summary.sent, summary.failed, summary.labels_failed) == (len(records), 0, 0)
    assert summary.labels_sent > 0
    read = read_records(broker.bootstrap, "handbook-labels", summary.labels_sent)
    assert len(read) == summary.labels_sent
    by_id = {r.transaction_id: r for r in records}
    for message in read:
        doc = orjson.loads(message.value)
        fraud = by_id[doc["transactionId"]]
        assert fraud.is_fraud and message.key == fraud.key == doc["userId"].encode()
        assert doc["labeledAt"] == format_timestamp_ms(fraud.timestamp_ms + delay)
    frauds = sum(bool(r.is_fraud) for r in records)
    assert summary.labels_sent + summary.labels_pending + summary.labels_unreported == frauds
