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
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from fraudstream.cli.console import format_alert, format_dead_letter
from fraudstream.cli.exits import EXIT_NOT_CONNECTED
from fraudstream.local.pipeline import BrokerUnreachable, LocalPipeline, local_pipeline
from fraudstream.local.worker_process import WorkerFailed, WorkerProcess
from fraudstream.settings import Settings
from producer.generator import GeneratorParameters, ScenarioGenerator
from producer.labels import DelayedLabels

STATUS_EVERY_SECONDS = 2.0
#: Labels follow each fraud after one day of event time (about four seconds at 300 tx/s).
DEMO_LABEL_DELAY_MS = 86_400_000
#: The demo's worker matures unlabeled transactions after one day, calibrates its classifier's
#: alert line on the last day and trusts the classifier after 30 frauds, so labels show their
#: effect within a 30-second run (the defaults, 7 days, 7 days and 50 frauds, suit real
#: traffic). With the line calibrated on 7 days, i.e. the whole run, the young classifier's
#: first probabilities never aged out: in 7 of 22 runs its first line went to 1 and stayed
#: there to the end (at most one classifier alert); on one day, it alerted in 7 runs of 7.
DEMO_WORKER_ENV = {
    "FRAUDSTREAM_LABEL_HORIZON_DAYS": "1",
    "FRAUDSTREAM_CLASSIFIER_CALIBRATION_DAYS": "1",
    "FRAUDSTREAM_LABEL_LATE_WINDOW_DAYS": "1",
    "FRAUDSTREAM_CLASSIFIER_MIN_FRAUDS": "30",
    "FRAUDSTREAM_CLASSIFIER_MIN_LEGIT": "500",
}
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

    produced: int = 0  # every message sent: transactions and labels
    fraud_produced: int = 0
    labels: int = 0
    alerts: int = 0
    alerts_by_reason: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    #: The generator's truth, never sent to the worker: which transactions were fraud.
    fraud_ids: set[str] = field(default_factory=set)
    true_alerts: int = 0
    true_alerts_by_reason: Counter[str] = field(default_factory=Counter)

    def count_alert(self, record: dict[str, Any]) -> None:
        """Count an alert read from the topic, and whether the transaction was fraud."""
        names = [r["name"] for r in record["reasons"]]
        self.alerts += 1
        self.alerts_by_reason.update(names)
        if record.get("transactionId") in self.fraud_ids:
            self.true_alerts += 1
            self.true_alerts_by_reason.update(names)


class DemoLoad:
    """The producer's labeled scenario stream, a little garbage, and the frauds' labels.

    Event time runs faster than the clock (the generator's users make about eight payments a
    day), so the labels, sent one day of event time after each fraud, reach the worker within
    the demo and its classifier gets to work.
    """

    def __init__(self, options: DemoOptions, amount_threshold: float) -> None:
        self.rng = random.Random(options.seed)
        params = GeneratorParameters(
            seed=options.seed,
            users=options.users,
            fraud_share=options.fraud_share,
            start_time=datetime.now(timezone.utc),
            rule_threshold=amount_threshold,
        )
        self.records = iter(ScenarioGenerator(params))
        self.labels = DelayedLabels(DEMO_LABEL_DELAY_MS, seed=options.seed)

    def next_messages(self) -> list[tuple[str, bytes, bytes, str | None]]:
        """(kind, key, value, fraud's transaction id) to send next: due labels, then one
        transaction (the id only when it is a fraud)."""
        if self.rng.random() < MALFORMED_SHARE:
            return [("input", b"garbage", self.rng.choice(MALFORMED), None)]
        record = next(self.records)
        messages: list[tuple[str, bytes, bytes, str | None]] = [
            ("labels", label.key, label.message_json(), None)
            for label in self.labels.observe(record)
        ]
        fraud = record.transaction_id if record.is_fraud else None
        messages.append(("input", record.key, record.message_json(), fraud))
        return messages


def run_demo(options: DemoOptions) -> int:
    """Run the whole pipeline for ``options.duration`` seconds; 0 when alerts came out."""
    workdir = Path(tempfile.mkdtemp(prefix="fraudstream-demo-"))
    try:
        with local_pipeline(workdir, print, DEMO_WORKER_ENV) as pipeline:
            print(f"worker ready; sending {options.rate:g} tx/s for {options.duration:g}s\n")
            counts = asyncio.run(_drive(options, pipeline))
            return _summarise(counts, pipeline.worker)
    except (WorkerFailed, BrokerUnreachable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_CONNECTED
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
    load = DemoLoad(options, settings.detection.amount_line)
    topics = {"input": settings.kafka.input_topic, "labels": settings.kafka.labels_topic}
    start = time.monotonic()
    next_status = start + STATUS_EVERY_SECONDS
    total = int(options.duration * options.rate)
    for sequence in range(total):
        due = start + sequence / options.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        for kind, key, value, fraud in load.next_messages():
            if fraud is not None:  # known before the alert can come back
                counts.fraud_ids.add(fraud)
                counts.fraud_produced += 1
            await producer.send(topics[kind], value, key=key)
            counts.produced += 1
            counts.labels += kind == "labels"
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
                    counts.count_alert(record)
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


def _classifier_state(classifier: dict[str, Any]) -> str:
    """Where the classifier stands: learning, ranking only, or alerting past a line.

    >>> _classifier_state({"ready": True, "threshold": 0.62, "lineCertified": True,
    ...                    "bestLabelledPrecision": 0.97})
    'in use; alert line 0.62, certified by the labels at the target precision'
    >>> _classifier_state({"ready": True, "threshold": 1.0, "lineCertified": False,
    ...                    "bestLabelledPrecision": 0.0})
    'in use, ranking only: no labels on its own scores yet to set its alert line'
    """
    if not classifier["ready"]:
        return "still learning"
    if classifier["bestLabelledPrecision"] <= 0.0:
        return "in use, ranking only: no labels on its own scores yet to set its alert line"
    line = classifier["threshold"]
    if classifier["lineCertified"]:
        return f"in use; alert line {line:.2f}, certified by the labels at the target precision"
    return f"in use; alert line {line:.2f}, at the parts' bar (labels not yet at the target)"


def _summarise(counts: DemoCounts, worker: WorkerProcess) -> int:
    stats = worker.stats()
    latency = stats["latencyMs"]
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(counts.alerts_by_reason.items())) or "none"
    true_by_reason = ", ".join(
        f"{name}: {counts.true_alerts_by_reason[name]} of {total}"
        for name, total in sorted(counts.alerts_by_reason.items())
    )
    precision = f"{counts.true_alerts / counts.alerts:.2f}" if counts.alerts else "-"
    classifier = stats["classifier"]
    sent = counts.produced - counts.labels
    print(
        "\n--- summary ---\n"
        f"transactions sent      {sent} (fraud injected: {counts.fraud_produced})\n"
        f"labels sent            {counts.labels} (frauds, one day of event time later)\n"
        f"worker read            {stats['messagesIn']} messages, {stats['transactionsIn']} valid, "
        f"{stats['labelsIn']} labels\n"
        f"alerts on the topic    {counts.alerts} ({reasons})\n"
        f"alerts that were fraud {counts.true_alerts} of {counts.alerts} (precision {precision}; "
        f"{true_by_reason or 'none'}); frauds caught {counts.true_alerts} of "
        f"{counts.fraud_produced}\n"
        f"classifier             learned {classifier['frauds']} frauds and {classifier['legit']} "
        f"legit; {_classifier_state(classifier)}\n"
        f"dead letters           {counts.dead_letters} {stats['dlqByReason']}\n"
        f"latency (ms, <=bucket) p50 {latency['p50']}  p95 {latency['p95']}  p99 {latency['p99']}\n"
        "note: Half-Space Trees alert after their warm-up window, the classifier once it has "
        "learned enough labels; the rules fire at once."
    )
    return 0 if counts.alerts > 0 and stats["messagesIn"] >= counts.produced else 1
