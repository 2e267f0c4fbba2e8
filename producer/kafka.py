"""The sending loop: paced delivery of labeled transactions to Kafka (or to a text stream).

:func:`produce` is the API other commands call (``fraudstream evaluate``/``demo``): it sends
records with aiokafka, keyed by user id, optionally with label headers, writes the ground
truth (with ``sentAt`` send times when asked), reports progress and returns a
:class:`ProduceSummary`. :func:`produce_to_stream` runs the same loop into a file instead
(``--dry-run``). Given a :class:`~producer.labels.DelayedLabels` queue, both also publish
delayed fraud labels (chargebacks) as the stream's event time reaches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Protocol, TextIO

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from fraudstream.core.fields import FieldMapping
from producer.labels import DEFAULT_LABELS_TOPIC, DelayedLabels, FraudLabel
from producer.records import DEFAULT_FIELDS, LabeledTransaction

DEFAULT_TOPIC = "transactions-input"
DEFAULT_BOOTSTRAP = "localhost:9092"
SCENARIO_HEADER = "fraudstream-scenario"
LABEL_HEADER = "fraudstream-label"
FRAUD_LABEL = b"1"
LEGIT_LABEL = b"0"

PROGRESS_INTERVAL_SECONDS = 1.0
#: Waits shorter than this are skipped: the schedule is absolute, so the next send catches up.
MIN_SLEEP_SECONDS = 0.001
#: Being further behind schedule than this drops the backlog instead of bursting to catch up.
MAX_CATCH_UP_SECONDS = 1.0
#: Hand control to the event loop at least this often when sending flat out, so aiokafka's
#: sender task drains batches while we keep filling them.
YIELD_EVERY_MESSAGES = 1000

#: Keys whose hash the partitioner remembers before starting afresh (bounds its memory).
MAX_REMEMBERED_KEYS = 1_000_000
#: Keeps murmur2 hashes non-negative, as Kafka's Java client does.
POSITIVE_HASH_MASK = 0x7FFFFFFF

#: Called once per message handed to the producer: (record, send time in epoch seconds).
SendHook = Callable[[LabeledTransaction, float], None]


@dataclass(frozen=True, slots=True)
class ProducerTuning:
    """aiokafka settings that trade latency for throughput."""

    linger_ms: int = 20
    max_batch_size: int = 256 * 1024
    acks: int | str = "all"
    request_timeout_ms: int = 30_000


@dataclass(slots=True)
class ProduceSummary:
    """What a run sent: counts per scenario, failures, time taken and the achieved rate."""

    sent: int = 0  # acknowledged by the broker (or written, for a stream)
    failed: int = 0
    per_scenario: Counter[str] = field(default_factory=Counter)  # records handed over
    fraud: int = 0
    elapsed_seconds: float = 0.0
    first_error: str | None = None
    labels: bool = False  # whether delayed fraud labels were published
    labels_sent: int = 0  # acknowledged (or written)
    labels_failed: int = 0
    labels_pending: int = 0  # not yet due when the stream ended: never published
    labels_unreported: int = 0  # frauds outside --label-share

    @property
    def handed_over(self) -> int:
        """Records given to the producer, delivered or not."""
        return sum(self.per_scenario.values())

    @property
    def achieved_rate(self) -> float:
        """Delivered messages per second of wall-clock time."""
        return self.sent / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def describe(self) -> str:
        """Multi-line, human-readable summary."""
        lines = [
            f"sent {self.sent:,} messages in {self.elapsed_seconds:.2f} s "
            f"({self.achieved_rate:,.0f} msg/s); {self.fraud:,} fraud, {self.failed:,} failed"
        ]
        lines += [f"  {name:<18} {count:>10,}" for name, count in sorted(self.per_scenario.items())]
        if self.labels:
            lines.append(
                f"fraud labels: {self.labels_sent:,} sent, {self.labels_failed:,} failed, "
                f"{self.labels_pending:,} not yet due at the end, "
                f"{self.labels_unreported:,} never reported"
            )
        if self.first_error:
            lines.append(f"first delivery error: {self.first_error}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """The summary as plain JSON-ready values (label counts only when labels were on)."""
        doc: dict[str, object] = {
            "sent": self.sent,
            "failed": self.failed,
            "fraud": self.fraud,
            "per_scenario": dict(self.per_scenario),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "achieved_rate": round(self.achieved_rate, 1),
            "first_error": self.first_error,
        }
        if self.labels:
            doc["labels_sent"] = self.labels_sent
            doc["labels_failed"] = self.labels_failed
            doc["labels_pending"] = self.labels_pending
            doc["labels_unreported"] = self.labels_unreported
        return doc


class SendPacer:
    """When each message is due, so that a rate and event-time gaps hold without drift.

    Due times are computed from a fixed origin (message n is due at origin + n/rate), not by
    adding sleeps, so sleep overshoot never accumulates. With ``speedup`` the gap between
    two events' timestamps is replayed divided by ``speedup``. When the sender falls more than
    ``max_catch_up`` seconds behind (a slow broker), the origin moves instead of bursting.
    """

    def __init__(
        self, rate: float = 0.0, speedup: float = 0.0, max_catch_up: float = MAX_CATCH_UP_SECONDS
    ) -> None:
        if rate < 0 or speedup < 0:
            raise ValueError("rate and speedup must be >= 0")
        self.rate = rate
        self.speedup = speedup
        self.max_catch_up = max_catch_up
        self._rate_origin: float | None = None
        self._rate_count = 0
        self._event_origin: tuple[float, int] | None = None  # (wall time, event time ms)

    @property
    def paced(self) -> bool:
        """Whether any pacing applies (otherwise every message is due at once)."""
        return self.rate > 0 or self.speedup > 0

    def due(self, now: float, event_time_ms: int) -> float:
        """Monotonic time at which the next message (with this event time) may be sent."""
        due = now
        if self.rate > 0:
            if self._rate_origin is None or now - self._rate_due() > self.max_catch_up:
                self._rate_origin, self._rate_count = now, 0
            due = max(due, self._rate_due())
            self._rate_count += 1
        if self.speedup > 0:
            if self._event_origin is None:
                self._event_origin = (now, event_time_ms)
            event_due = self._event_due(event_time_ms)
            if now - event_due > self.max_catch_up:
                self._event_origin = (now, event_time_ms)
                event_due = now
            due = max(due, event_due)
        return due

    def _rate_due(self) -> float:
        assert self._rate_origin is not None
        return self._rate_origin + self._rate_count / self.rate

    def _event_due(self, event_time_ms: int) -> float:
        assert self._event_origin is not None
        wall_origin, event_origin_ms = self._event_origin
        return wall_origin + (event_time_ms - event_origin_ms) / 1000 / self.speedup


class ProgressLine:
    """A status line on a text stream at most once per interval: sent count and rates."""

    def __init__(self, stream: TextIO, interval: float = PROGRESS_INTERVAL_SECONDS) -> None:
        self.stream = stream
        self.interval = interval
        self._overwrite = stream.isatty()
        self._started = 0.0
        self._last_time = 0.0
        self._last_count = 0
        self._wrote = False

    def start(self, now: float) -> None:
        """Begin timing at ``now`` (monotonic seconds)."""
        self._started = self._last_time = now

    def update(self, now: float, count: int) -> None:
        """Write a line if the interval has passed since the last one."""
        if now - self._last_time < self.interval:
            return
        recent = (count - self._last_count) / (now - self._last_time)
        overall = count / (now - self._started) if now > self._started else 0.0
        line = f"sent {count:,}  {recent:,.0f} msg/s now  {overall:,.0f} msg/s average"
        self.stream.write(f"\r{line}\x1b[K" if self._overwrite else f"{line}\n")
        self.stream.flush()
        self._last_time, self._last_count, self._wrote = now, count, True

    def finish(self) -> None:
        """End an overwritten line so the summary starts on its own line."""
        if self._overwrite and self._wrote:
            self.stream.write("\n")
            self.stream.flush()


class GroundTruthWriter:
    """Appends one JSON line per record: id, user, scenario, is_fraud (and ``sentAt``)."""

    def __init__(self, path: Path, record_send_times: bool) -> None:
        self.record_send_times = record_send_times
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()/the context manager

    def write(self, record: LabeledTransaction, sent_at: float) -> None:
        """Record one transaction handed to the sink."""
        doc = record.ground_truth(sent_at if self.record_send_times else None)
        self._file.write(orjson.dumps(doc) + b"\n")

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()

    def __enter__(self) -> GroundTruthWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MessageSink(Protocol):
    """Where the loop puts messages: Kafka, or a stream for ``--dry-run``."""

    async def send(self, record: LabeledTransaction) -> None:
        """Hand one record over (delivery may complete later)."""

    async def drain(self, summary: ProduceSummary) -> None:
        """Wait for every message handed over and fill ``sent``/``failed`` in the summary."""


def label_headers(record: LabeledTransaction) -> list[tuple[str, bytes]]:
    """Kafka headers carrying the ground truth (the label header only when it is known)."""
    headers = [(SCENARIO_HEADER, record.scenario.encode())]
    if record.is_fraud is not None:
        headers.append((LABEL_HEADER, FRAUD_LABEL if record.is_fraud else LEGIT_LABEL))
    return headers


class UserKeyPartitioner:
    """Kafka's default murmur2 key partitioning, remembering each key's hash.

    Same partitions as aiokafka's ``DefaultPartitioner`` (and the Java client); memoised
    because user ids repeat and aiokafka's murmur2 is pure Python.
    """

    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        """The partition of ``key``; a random available one for a missing key."""
        if key is None:
            return random.choice(available or all_partitions)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= MAX_REMEMBERED_KEYS:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & POSITIVE_HASH_MASK
        return all_partitions[hashed % len(all_partitions)]


class DeliveryTracker:
    """Counts aiokafka delivery futures as they resolve, and waits for the last one."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.delivered = 0
        self.failed = 0
        self.first_error: str | None = None
        self._all_done = asyncio.Event()
        self._all_done.set()

    def track(self, delivery: asyncio.Future[Any]) -> None:
        """Count ``delivery`` once the broker answers (or the send fails)."""
        self.in_flight += 1
        self._all_done.clear()
        delivery.add_done_callback(self._on_delivery)

    def _on_delivery(self, delivery: asyncio.Future[Any]) -> None:
        self.in_flight -= 1
        if delivery.cancelled() or delivery.exception() is not None:
            self.failed += 1
            if self.first_error is None:
                self.first_error = (
                    "cancelled" if delivery.cancelled() else repr(delivery.exception())
                )
        else:
            self.delivered += 1
        if self.in_flight == 0:
            self._all_done.set()

    async def wait(self) -> None:
        """Return once every tracked delivery has resolved."""
        await self._all_done.wait()


class KafkaSink:
    """Sends with an aiokafka producer, counting deliveries as their futures resolve."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        headers: bool,
        fields: FieldMapping = DEFAULT_FIELDS,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.headers = headers
        self.fields = fields
        self._deliveries = DeliveryTracker()

    async def send(self, record: LabeledTransaction) -> None:
        """Queue one message; its future is counted when the broker answers."""
        # Kafka's record timestamp stays the send time: event times from 2024 would make a
        # real broker's time-based retention delete the messages at once.
        delivery = await self.producer.send(
            self.topic,
            value=record.message_json(self.fields),
            key=record.key,
            headers=label_headers(record) if self.headers else None,
        )
        self._deliveries.track(delivery)

    async def drain(self, summary: ProduceSummary) -> None:
        """Flush the producer and wait for every delivery callback."""
        await self.producer.flush()
        await self._deliveries.wait()
        summary.sent, summary.failed = self._deliveries.delivered, self._deliveries.failed
        summary.first_error = self._deliveries.first_error


class KafkaLabelSink:
    """Sends fraud labels to their own topic with the transactions' producer, keyed by user."""

    def __init__(self, producer: AIOKafkaProducer, topic: str = DEFAULT_LABELS_TOPIC) -> None:
        self.producer = producer
        self.topic = topic
        self._deliveries = DeliveryTracker()

    async def send(self, label: FraudLabel) -> None:
        """Queue one label; counted when the broker answers."""
        delivery = await self.producer.send(self.topic, value=label.message_json(), key=label.key)
        self._deliveries.track(delivery)

    async def drain(self, summary: ProduceSummary) -> None:
        """Flush and wait for every label's delivery; fill the label counts."""
        await self.producer.flush()
        await self._deliveries.wait()
        summary.labels_sent = self._deliveries.delivered
        summary.labels_failed = self._deliveries.failed
        if summary.first_error is None:
            summary.first_error = self._deliveries.first_error


class StreamLabelSink:
    """Writes each fraud label as one JSON line (``--dry-run``: among the transactions)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self._written = 0

    async def send(self, label: FraudLabel) -> None:
        """Write one line."""
        self.stream.write(label.message_json() + b"\n")
        self._written += 1

    async def drain(self, summary: ProduceSummary) -> None:
        """Flush the stream; every line written counts as sent."""
        self.stream.flush()
        summary.labels_sent = self._written


class LabelSink(Protocol):
    """Where released fraud labels go: a Kafka topic, or a stream for ``--dry-run``."""

    async def send(self, label: FraudLabel) -> None:
        """Hand one label over (delivery may complete later)."""

    async def drain(self, summary: ProduceSummary) -> None:
        """Wait for every label handed over and fill the label counts of the summary."""


class LabelingSink:
    """A sink that also publishes delayed fraud labels as the stream's event time passes them.

    Before each transaction, the labels due by its event time go out; then the transaction,
    whose own label (if it is a reported fraud) waits in the queue. Labels still pending when
    the stream ends are not published (their time has not come) but counted.
    """

    def __init__(self, inner: MessageSink, queue: DelayedLabels, labels: LabelSink) -> None:
        self.inner = inner
        self.queue = queue
        self.labels = labels

    async def send(self, record: LabeledTransaction) -> None:
        """Publish what fell due, send the record, then queue its label."""
        for label in self.queue.release(record.timestamp_ms):
            await self.labels.send(label)
        await self.inner.send(record)
        self.queue.add(record)

    async def drain(self, summary: ProduceSummary) -> None:
        """Drain the transactions, then the labels; count what stays unpublished."""
        await self.inner.drain(summary)
        await self.labels.drain(summary)
        summary.labels = True
        summary.labels_pending = self.queue.pending
        summary.labels_unreported = self.queue.unreported


class StreamSink:
    """Writes each message as one JSON line (what the detector would read) to a stream."""

    def __init__(self, stream: BinaryIO, fields: FieldMapping = DEFAULT_FIELDS) -> None:
        self.stream = stream
        self.fields = fields
        self._written = 0

    async def send(self, record: LabeledTransaction) -> None:
        """Write one line."""
        self.stream.write(record.message_json(self.fields) + b"\n")
        self._written += 1

    async def drain(self, summary: ProduceSummary) -> None:
        """Flush the stream; every line written counts as sent."""
        self.stream.flush()
        summary.sent = self._written


async def _stopped_within(seconds: float, stop: asyncio.Event | None) -> bool:
    """Sleep for ``seconds`` unless ``stop`` is set first; tell whether it was."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def run_sending_loop(
    records: Iterable[LabeledTransaction],
    sink: MessageSink,
    *,
    rate: float = 0.0,
    speedup: float = 0.0,
    duration: float | None = None,
    progress: TextIO | None = None,
    ground_truth_path: Path | None = None,
    record_send_times: bool = False,
    on_sent: SendHook | None = None,
    stop: asyncio.Event | None = None,
) -> ProduceSummary:
    """Pace records into a sink; stop at the end, after ``duration`` s, or when ``stop`` is set.

    The ground truth gets a line for every record handed to the sink, delivered or not (the
    summary counts failures).
    """
    pacer = SendPacer(rate, speedup)
    summary = ProduceSummary()
    progress_line = ProgressLine(progress) if progress is not None else None
    ground_truth = (
        GroundTruthWriter(ground_truth_path, record_send_times) if ground_truth_path else None
    )
    started = time.monotonic()
    deadline = started + duration if duration is not None else None
    if progress_line is not None:
        progress_line.start(started)
    handed_over = 0
    per_scenario: Counter[str] = summary.per_scenario
    try:
        for record in records:
            if stop is not None and stop.is_set():
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            wait = pacer.due(now, record.timestamp_ms) - now if pacer.paced else 0.0
            if deadline is not None and now + wait >= deadline:
                break
            if wait >= MIN_SLEEP_SECONDS:
                if await _stopped_within(wait, stop):
                    break
            elif handed_over % YIELD_EVERY_MESSAGES == 0:
                await asyncio.sleep(0)
            sent_at = time.time()
            await sink.send(record)
            handed_over += 1
            per_scenario[record.scenario] += 1
            if record.is_fraud:
                summary.fraud += 1
            if ground_truth is not None:
                ground_truth.write(record, sent_at)
            if on_sent is not None:
                on_sent(record, sent_at)
            if progress_line is not None:
                progress_line.update(time.monotonic(), handed_over)
        await sink.drain(summary)
    finally:
        if ground_truth is not None:
            ground_truth.close()
        if progress_line is not None:
            progress_line.finish()
    summary.elapsed_seconds = time.monotonic() - started
    return summary


async def produce(
    records: Iterable[LabeledTransaction],
    *,
    bootstrap: str = DEFAULT_BOOTSTRAP,
    topic: str = DEFAULT_TOPIC,
    rate: float = 0.0,
    headers: bool = True,
    progress: TextIO | None = None,
    ground_truth_path: Path | None = None,
    record_send_times: bool = False,
    speedup: float = 0.0,
    duration: float | None = None,
    on_sent: SendHook | None = None,
    stop: asyncio.Event | None = None,
    tuning: ProducerTuning | None = None,
    security: Mapping[str, Any] | None = None,
    labels: DelayedLabels | None = None,
    labels_topic: str = DEFAULT_LABELS_TOPIC,
    fields: FieldMapping = DEFAULT_FIELDS,
) -> ProduceSummary:
    """Send records to Kafka keyed by user id and return what was delivered.

    ``rate`` is messages per second (0 = as fast as possible); ``speedup`` replays event-time
    gaps divided by it (0 = off). ``on_sent`` receives (record, epoch send time) for each
    message, e.g. to measure detection latency; ``record_send_times`` also writes it into the
    ground-truth file as ``sentAt``. ``security`` holds aiokafka's SASL/TLS arguments, as
    :func:`fraudstream.security.aiokafka_security` makes them from the settings. With
    ``labels``, the frauds' delayed labels go to ``labels_topic`` as event time reaches them.
    Messages name their fields by ``fields``, the worker's input mapping.
    Raises aiokafka's ``KafkaConnectionError`` when the broker is unreachable.
    """
    tuning = tuning or ProducerTuning()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=tuning.linger_ms,
        max_batch_size=tuning.max_batch_size,
        acks=tuning.acks,
        request_timeout_ms=tuning.request_timeout_ms,
        partitioner=UserKeyPartitioner(),
        **(security or {}),
    )
    try:
        await producer.start()
        sink: MessageSink = KafkaSink(producer, topic, headers, fields)
        if labels is not None:
            sink = LabelingSink(sink, labels, KafkaLabelSink(producer, labels_topic))
        return await run_sending_loop(
            records,
            sink,
            rate=rate,
            speedup=speedup,
            duration=duration,
            progress=progress,
            ground_truth_path=ground_truth_path,
            record_send_times=record_send_times,
            on_sent=on_sent,
            stop=stop,
        )
    finally:
        await producer.stop()


async def produce_to_stream(
    records: Iterable[LabeledTransaction],
    stream: BinaryIO | None = None,
    *,
    rate: float = 0.0,
    progress: TextIO | None = None,
    ground_truth_path: Path | None = None,
    record_send_times: bool = False,
    speedup: float = 0.0,
    duration: float | None = None,
    on_sent: SendHook | None = None,
    stop: asyncio.Event | None = None,
    labels: DelayedLabels | None = None,
    fields: FieldMapping = DEFAULT_FIELDS,
) -> ProduceSummary:
    """The same loop as :func:`produce`, writing JSON lines (default: stdout) instead.

    With ``labels``, each fraud label is written as a line too, where it falls due.
    """
    out = stream if stream is not None else sys.stdout.buffer
    sink: MessageSink = StreamSink(out, fields)
    if labels is not None:
        sink = LabelingSink(sink, labels, StreamLabelSink(out))
    return await run_sending_loop(
        records,
        sink,
        rate=rate,
        speedup=speedup,
        duration=duration,
        progress=progress,
        ground_truth_path=ground_truth_path,
        record_send_times=record_send_times,
        on_sent=on_sent,
        stop=stop,
    )
