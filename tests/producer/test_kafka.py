"""Specification of the sending loop: pacing, and delivery to a real (Tansu) broker."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from fraudstream.local.ports import free_port
from fraudstream.local.tansu import TansuBroker
from producer.generator import GeneratorParameters, ScenarioGenerator
from producer.kafka import (
    LABEL_HEADER,
    SCENARIO_HEADER,
    SendPacer,
    UserKeyPartitioner,
    produce,
    produce_to_stream,
)
from producer.records import LabeledTransaction
from tests.support.kafka import read_records

REPO_ROOT = Path(__file__).resolve().parents[2]


def records(count: int, seed: int = 3, fraud_share: float = 0.2) -> list[LabeledTransaction]:
    """A small labeled stream with every scenario in it."""
    params = GeneratorParameters(seed=seed, users=100, fraud_share=fraud_share)
    return list(itertools.islice(ScenarioGenerator(params), count))


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


# --- pacing (no broker) -----------------------------------------------------------------------


def test_pacer_spaces_messages_at_the_rate_without_drift() -> None:
    pacer = SendPacer(rate=100.0)
    now = start = 50.0
    dues = []
    for _ in range(1_000):
        due = pacer.due(now, 0)
        dues.append(due)
        now = max(now, due) + 0.0005  # every sleep overshoots by 0.5 ms
    assert dues[-1] - start == pytest.approx(999 / 100.0)
    assert now - start < 999 / 100.0 + 0.01  # overshoot did not accumulate


def test_pacer_drops_a_backlog_instead_of_bursting_after_a_stall() -> None:
    pacer = SendPacer(rate=10.0, max_catch_up=1.0)
    pacer.due(0.0, 0)
    stalled_until = 30.0
    first, second = pacer.due(stalled_until, 0), pacer.due(stalled_until, 0)
    assert first == stalled_until
    assert second == pytest.approx(stalled_until + 0.1)


def test_pacer_replays_event_time_gaps_divided_by_speedup() -> None:
    pacer = SendPacer(speedup=2.0)
    dues = [pacer.due(10.0, event_ms) for event_ms in (0, 1_000, 3_000)]
    assert dues == [10.0, 10.5, 11.5]


def test_pacer_honours_the_slower_of_rate_and_speedup() -> None:
    pacer = SendPacer(rate=1.0, speedup=1000.0)
    dues = [pacer.due(0.0, event_ms) for event_ms in (0, 10, 20)]
    assert dues == [0.0, 1.0, 2.0]


def test_unpaced_messages_are_due_at_once() -> None:
    pacer = SendPacer()
    assert not pacer.paced
    assert pacer.due(7.0, 123) == 7.0


# --- the loop without Kafka -------------------------------------------------------------------


def test_stream_output_is_the_message_json_one_per_line(tmp_path: Path) -> None:
    batch = records(200)
    out = io.BytesIO()
    truth = tmp_path / "truth.jsonl"
    summary = asyncio.run(produce_to_stream(batch, out, ground_truth_path=truth))
    assert out.getvalue() == b"".join(r.message_json() + b"\n" for r in batch)
    assert summary.sent == 200
    assert [t["transactionId"] for t in read_jsonl(truth)] == [r.transaction_id for r in batch]


def test_rate_limit_spreads_messages_over_the_expected_time() -> None:
    summary = asyncio.run(produce_to_stream(records(200), io.BytesIO(), rate=400.0))
    assert summary.sent == 200
    assert 0.45 <= summary.elapsed_seconds < 1.5


def test_duration_stops_an_endless_stream() -> None:
    endless = ScenarioGenerator(GeneratorParameters(seed=1, users=10))
    summary = asyncio.run(produce_to_stream(endless, io.BytesIO(), rate=200.0, duration=0.3))
    assert 0.25 <= summary.elapsed_seconds < 1.0
    assert 40 <= summary.sent <= 70


def test_stop_event_ends_the_loop_with_a_summary() -> None:
    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, stop.set)
        endless = ScenarioGenerator(GeneratorParameters(seed=1, users=10))
        summary = await produce_to_stream(endless, io.BytesIO(), rate=100.0, stop=stop)
        return summary.sent

    assert 10 <= asyncio.run(run()) <= 40


def test_stop_event_interrupts_a_long_wait_for_the_next_event() -> None:
    async def run() -> float:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        # An hour of event time between the two records: at speedup 1, an hour's wait.
        first = records(1)[0]
        later = dataclasses.replace(first, timestamp_ms=first.timestamp_ms + 3_600_000)
        started = time.monotonic()
        await produce_to_stream([first, later], io.BytesIO(), speedup=1.0, stop=stop)
        return time.monotonic() - started

    assert asyncio.run(run()) < 2.0


# --- against a real broker --------------------------------------------------------------------


def test_produce_delivers_every_record_keyed_by_user_with_label_headers(
    broker: TansuBroker, tmp_path: Path
) -> None:
    batch = records(500)
    truth_path = tmp_path / "truth.jsonl"
    hooked: list[tuple[str, float]] = []
    before = time.time()
    summary = asyncio.run(
        produce(
            batch,
            bootstrap=broker.bootstrap,
            topic="producer-headers",
            rate=0,
            headers=True,
            progress=None,
            ground_truth_path=truth_path,
            record_send_times=True,
            on_sent=lambda record, sent_at: hooked.append((record.transaction_id, sent_at)),
        )
    )
    assert (summary.sent, summary.failed) == (500, 0)
    assert summary.handed_over == 500
    assert summary.fraud == sum(bool(r.is_fraud) for r in batch)

    read = read_records(broker.bootstrap, "producer-headers", 500)
    assert len(read) == 500
    by_id = {r.transaction_id: r for r in batch}
    assert {orjson.loads(m.value)["transactionId"] for m in read} == set(by_id)
    for message in read:
        doc = orjson.loads(message.value)
        sent = by_id[doc["transactionId"]]
        assert message.key == doc["userId"].encode() == sent.key
        assert doc == sent.message()
        headers = dict(message.headers)
        assert headers[SCENARIO_HEADER] == sent.scenario.encode()
        assert headers[LABEL_HEADER] == (b"1" if sent.is_fraud else b"0")
    partitions_by_user: dict[str, set[int]] = {}
    for message in read:
        partitions_by_user.setdefault(message.key.decode(), set()).add(message.partition)
    assert all(len(partitions) == 1 for partitions in partitions_by_user.values())

    truth = read_jsonl(truth_path)
    assert [t["transactionId"] for t in truth] == [r.transaction_id for r in batch]
    for line, record in zip(truth, batch, strict=True):
        assert line["userId"] == record.user_id
        assert line["scenario"] == record.scenario
        assert line["is_fraud"] == record.is_fraud
        assert before <= float(line["sentAt"]) <= time.time()  # type: ignore[arg-type]
    assert [tx_id for tx_id, _ in hooked] == [r.transaction_id for r in batch]
    assert [sent_at for _, sent_at in hooked] == [t["sentAt"] for t in truth]


def test_no_headers_sends_bare_messages(broker: TansuBroker) -> None:
    summary = asyncio.run(
        produce(records(50), bootstrap=broker.bootstrap, topic="producer-bare", headers=False)
    )
    assert summary.sent == 50
    read = read_records(broker.bootstrap, "producer-bare", 50)
    assert len(read) == 50
    assert all(not message.headers for message in read)


def test_unreachable_broker_raises_a_connection_error() -> None:
    with pytest.raises(KafkaConnectionError):
        asyncio.run(produce(records(5), bootstrap=f"127.0.0.1:{free_port()}"))


def test_command_line_sends_what_dry_run_prints(broker: TansuBroker, tmp_path: Path) -> None:
    options = ["--seed", "9", "--users", "50", "--count", "300", "--rate", "0", "--quiet"]
    dry = subprocess.run(
        [sys.executable, "-m", "producer", "--dry-run", *options],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    )
    truth = tmp_path / "truth.jsonl"
    target = ["--bootstrap", broker.bootstrap, "--topic", "producer-cli"]
    sent = subprocess.run(
        [sys.executable, "-m", "producer", *target, "--ground-truth", str(truth), *options],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert sent.returncode == 0, sent.stderr
    assert "sent 300 messages" in sent.stderr
    read = read_records(broker.bootstrap, "producer-cli", 300)
    assert sorted(m.value for m in read) == sorted(dry.stdout.splitlines())
    assert len(read_jsonl(truth)) == 300


@given(keys=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=50))
def test_partitioner_picks_the_same_partitions_as_kafkas_default(keys: list[bytes]) -> None:
    ours, kafkas = UserKeyPartitioner(), DefaultPartitioner()
    for partitions in ([0], [0, 1, 2, 3], list(range(7))):
        for key in keys + keys:  # the second pass answers from memory
            assert ours(key, partitions, partitions) == kafkas(key, partitions, partitions)
