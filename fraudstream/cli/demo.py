"""``fraudstream demo``: embedded broker + real worker + load, with live counts on screen."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from fraudstream.cli.console import format_alert, format_dead_letter
from fraudstream.core.records import isoformat_utc
from fraudstream.local.pipeline import LocalPipeline, local_pipeline
from fraudstream.local.worker_process import WorkerFailed, WorkerProcess
from fraudstream.settings import Settings

STATUS_EVERY_SECONDS = 2.0
CATCH_UP_TIMEOUT_SECONDS = 60.0
#: Share of deliberately malformed messages, so the dead-letter topic has something to show.
MALFORMED_SHARE = 0.005
MALFORMED = (
    b"this is not json",
    b'{"userId": "", "amount": 10, "timestamp": "2024-12-04T15:00:00Z"}',
    b'{"userId": "u1", "amount": -5, "timestamp": "2024-12-04T15:00:00Z"}',
    b'{"userId": "u1", "amount": 10}',
    b"[1, 2, 3]",
)


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs: how long, how fast, how many users, how much fraud."""

    duration: float = 30.0
    rate: float = 300.0
    users: int = 200
    fraud_share: float = 0.02
    show: int = 8
    seed: int = 7


@dataclass
class DemoCounts:
    """What the demo saw on the topics."""

    produced: int = 0
    fraud_produced: int = 0
    alerts: int = 0
    alerts_by_reason: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0


class DemoLoad:
    """A small built-in load: users with their own habits, some fraud, a little garbage."""

    def __init__(self, options: DemoOptions, amount_threshold: float) -> None:
        self.rng = random.Random(options.seed)
        self.options = options
        self.amount_threshold = amount_threshold
        self.medians = [self.rng.lognormvariate(3.5, 0.8) for _ in range(options.users)]

    def next_message(self, sequence: int) -> tuple[bytes, bytes, bool]:
        """(key, value, is_fraud) for message number ``sequence``."""
        rng = self.rng
        if rng.random() < MALFORMED_SHARE:
            return b"garbage", rng.choice(MALFORMED), False
        user = rng.randrange(self.options.users)
        is_fraud = rng.random() < self.options.fraud_share
        if is_fraud and rng.random() < 0.5:
            amount = self.amount_threshold * rng.uniform(1.05, 5.0)
        elif is_fraud:
            amount = min(self.medians[user] * rng.uniform(20, 60), self.amount_threshold)
        else:
            amount = min(self.medians[user] * rng.lognormvariate(0, 0.5), self.amount_threshold)
        user_id = f"user-{user:05d}"
        record = {
            "transactionId": f"demo-{self.options.seed}-{sequence}",
            "userId": user_id,
            "amount": round(amount, 2),
            "timestamp": isoformat_utc(datetime.now(timezone.utc)),
        }
        return user_id.encode(), orjson.dumps(record), is_fraud


def run_demo(options: DemoOptions) -> int:
    """Run the whole pipeline for ``options.duration`` seconds; 0 when alerts came out."""
    workdir = Path(tempfile.mkdtemp(prefix="fraudstream-demo-"))
    try:
        with local_pipeline(workdir, print) as pipeline:
            print(f"worker ready; sending {options.rate:g} tx/s for {options.duration:g}s\n")
            counts = asyncio.run(_drive(options, pipeline))
            return _summarise(counts, pipeline.worker)
    except WorkerFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; stopping", file=sys.stderr)
        return 130


async def _drive(options: DemoOptions, pipeline: LocalPipeline) -> DemoCounts:
    counts = DemoCounts()
    settings, worker, bootstrap = pipeline.settings, pipeline.worker, pipeline.bootstrap
    security = pipeline.security
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **security)
    consumer = AIOKafkaConsumer(
        settings.kafka.alerts_topic,
        settings.kafka.dlq_topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        **security,
    )
    await producer.start()
    await consumer.start()
    reader = asyncio.create_task(_read_outputs(consumer, settings, counts, options.show))
    try:
        await _produce(producer, options, settings, counts, worker)
        await producer.flush()
        await _wait_caught_up(counts, worker)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await producer.stop()
        await consumer.stop()
    return counts


async def _produce(
    producer: AIOKafkaProducer,
    options: DemoOptions,
    settings: Settings,
    counts: DemoCounts,
    worker: WorkerProcess,
) -> None:
    load = DemoLoad(options, settings.detection.amount_threshold)
    start = time.monotonic()
    next_status = start + STATUS_EVERY_SECONDS
    total = int(options.duration * options.rate)
    for sequence in range(total):
        due = start + sequence / options.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        key, value, is_fraud = load.next_message(sequence)
        await producer.send(settings.kafka.input_topic, value, key=key)
        counts.produced += 1
        counts.fraud_produced += is_fraud
        if time.monotonic() >= next_status:
            next_status += STATUS_EVERY_SECONDS
            _print_status(counts, worker, time.monotonic() - start)


async def _wait_caught_up(counts: DemoCounts, worker: WorkerProcess) -> None:
    """Wait until the worker has read everything sent and its outputs reached us."""
    if not await worker.caught_up(
        counts.produced,
        lambda stats: counts.alerts >= stats["alertsOut"] and counts.dead_letters >= stats["dlq"],
        CATCH_UP_TIMEOUT_SECONDS,
    ):
        print("warning: the worker did not catch up within the deadline", file=sys.stderr)


async def _read_outputs(
    consumer: AIOKafkaConsumer, settings: Settings, counts: DemoCounts, show: int
) -> None:
    shown_dlq = 0
    while True:
        batches = await consumer.getmany(timeout_ms=200)
        for tp, messages in batches.items():
            for message in messages:
                record = orjson.loads(message.value or b"{}")
                if tp.topic == settings.kafka.dlq_topic:
                    counts.dead_letters += 1
                    if shown_dlq < 2:
                        shown_dlq += 1
                        print(format_dead_letter(record))
                else:
                    counts.alerts += 1
                    counts.alerts_by_reason.update(r["name"] for r in record["reasons"])
                    if counts.alerts <= show:
                        print(format_alert(record))


def _print_status(counts: DemoCounts, worker: WorkerProcess, elapsed: float) -> None:
    processed = "?"
    with contextlib.suppress(OSError, ValueError):
        processed = str(worker.stats()["transactionsIn"])
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(counts.alerts_by_reason.items())) or "-"
    print(
        f"[{elapsed:5.1f}s] sent {counts.produced} ({counts.produced / elapsed:.0f}/s) | "
        f"processed {processed} | alerts {counts.alerts} ({reasons}) | dlq {counts.dead_letters}",
        flush=True,
    )


def _summarise(counts: DemoCounts, worker: WorkerProcess) -> int:
    stats = worker.stats()
    latency = stats["latencyMs"]
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(counts.alerts_by_reason.items())) or "none"
    print(
        "\n--- summary ---\n"
        f"transactions sent      {counts.produced} (fraud injected: {counts.fraud_produced})\n"
        f"worker read            {stats['messagesIn']} messages, {stats['transactionsIn']} valid\n"
        f"alerts on the topic    {counts.alerts} ({reasons})\n"
        f"dead letters           {counts.dead_letters} {stats['dlqByReason']}\n"
        f"latency (ms, <=bucket) p50 {latency['p50']}  p95 {latency['p95']}  p99 {latency['p99']}\n"
        "note: the model only alerts after its warm-up window; the amount rule fires at once."
    )
    return 0 if counts.alerts > 0 and stats["messagesIn"] >= counts.produced else 1
