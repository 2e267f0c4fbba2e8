"""The worker's loop body: a fetched batch of messages in, decisions, alerts and state out.

:class:`BatchHandler` gets every collaborator passed in (detector, profile store, stats,
sink, where alerts and dead letters go, how changelog records are flushed), so it runs the
same under Faust and in a unit test with fakes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import Any, NoReturn, Protocol

from fraudstream.core.detector import Detector
from fraudstream.core.features import UserProfile
from fraudstream.core.fields import FieldMapping
from fraudstream.core.parsing import DEFAULT_FIELDS, parse_transaction
from fraudstream.core.records import DeadLetterReason, Rejection, Source, dead_letter
from fraudstream.sinks.base import ProcessedRecord, Sink
from fraudstream.worker.changelog import ChangelogBatch
from fraudstream.worker.stats import WorkerStats

log = logging.getLogger("fraudstream")


class MessageLike(Protocol):
    """The parts of a consumed Kafka message the handler reads (Faust's ``Message`` has them)."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: float


class EventLike(Protocol):
    """A consumed event (Faust's ``Event``): the handler only reads its message."""

    @property
    def message(self) -> MessageLike:
        """The Kafka message behind the event."""


class ProfileStoreLike(Protocol):
    """Per-user profiles: :class:`fraudstream.worker.state.ProfileStore` or a test's dict."""

    def load(self, user_id: str) -> UserProfile:
        """The user's profile (empty for a new user)."""

    def store(
        self, user_id: str, profile: UserProfile, partition: int, changes: ChangelogBatch
    ) -> None:
        """Keep the profile now; its changelog record goes out with ``changes``."""


class Outbox(Protocol):
    """Where the handler's output records go (the alerts and dead-letter topics)."""

    async def send_alert(self, key: bytes, value: bytes) -> None:
        """Publish one alert, keyed by userId."""

    async def send_dead_letter(self, key: bytes | None, value: bytes) -> None:
        """Park one refused message."""


class BatchHandler:
    """Validate, score and route every message of a batch, then write its state once."""

    def __init__(
        self,
        detector: Detector,
        profiles: ProfileStoreLike,
        stats: WorkerStats,
        outbox: Outbox,
        flush_changes: Callable[[ChangelogBatch], Awaitable[None]],
        on_state_not_saved: Callable[[], NoReturn],
        *,
        sink: Sink | None = None,
        max_message_bytes: int = 65536,
        fields: FieldMapping = DEFAULT_FIELDS,
        set_current_event: Callable[[Any], None] = lambda event: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.detector = detector
        self.profiles = profiles
        self.stats = stats
        self.outbox = outbox
        self.flush_changes = flush_changes
        self.on_state_not_saved = on_state_not_saved
        self.sink = sink
        self.max_message_bytes = max_message_bytes
        self.fields = fields
        self.set_current_event = set_current_event
        self.clock = clock

    async def handle(self, events: Sequence[EventLike]) -> None:
        """Every message of the batch in order, then one changelog write per partition.

        Faust acknowledges the batch's offsets when this returns, so everything the batch
        changed is on the broker before that; if the changelog write fails, the worker
        leaves through ``on_state_not_saved`` before any commit.
        """
        self.stats.batches += 1  # first, so a snapshot never counts a batch's messages without it
        changes = ChangelogBatch()
        for event in events:
            self.set_current_event(event)  # the partition tables and the RocksDB store write to
            try:
                await self.handle_message(event.message, changes)
            except Exception as exc:  # one message must not stop the stream
                await self.dead_letter_failure(event.message, exc)
        if changes:
            try:
                await self.flush_changes(changes)
            except Exception:
                self.on_state_not_saved()

    async def handle_message(self, message: MessageLike, changes: ChangelogBatch) -> None:
        """One message: a dead letter, or a transaction scored and maybe alerted."""
        source = Source(message.topic, message.partition, message.offset)
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        parsed = parse_transaction(
            message.value or b"", source, self.max_message_bytes, self.fields
        )
        if isinstance(parsed, Rejection):
            log.debug("dead letter %s at %s: %s", parsed.reason.value, source, parsed.detail)
            await self.send_dead_letter(message, source, parsed, now)
            return

        key = parsed.user_id.encode()
        if message.key != key:
            self.stats.misrouted += 1
            if self.stats.misrouted == 1:
                log.warning(
                    "message at %s has key %r, not its userId %r: per-user state is only "
                    "correct when producers key transactions by userId",
                    source,
                    message.key,
                    parsed.user_id,
                )

        profile = self.profiles.load(parsed.user_id)
        decision = self.detector.process(parsed, profile, source.partition, source.offset, now)
        self.stats.transactions_in += 1
        if decision.redelivered:
            self.stats.redelivered += 1
        else:
            self.profiles.store(parsed.user_id, profile, source.partition, changes)

        if self.sink is not None:
            self.sink.write(ProcessedRecord(parsed, decision.score, decision.alert))

        if decision.alert is not None:
            await self.outbox.send_alert(key, decision.alert.to_json())
            self.stats.alerts_out += 1
            self.stats.alerts_by_reason.update(decision.alert.reason_names)

        self.stats.positions[source.partition] = source.offset
        if message.timestamp:
            self.stats.latency_ms.observe(max(0.0, (self.clock() - message.timestamp) * 1000.0))

    async def dead_letter_failure(self, message: MessageLike, exc: Exception) -> None:
        """Park a message whose processing raised on the DLQ, so the stream goes on.

        Left to Faust, the exception kills the agent; the restarted agent was seen not to
        resume consuming, so the worker would sit idle with a growing lag.
        """
        source = Source(message.topic, message.partition, message.offset)
        log.exception("processing failed at %s; message sent to the dead-letter topic", source)
        rejection = Rejection(DeadLetterReason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        await self.send_dead_letter(message, source, rejection, now)

    async def send_dead_letter(
        self, message: MessageLike, source: Source, rejection: Rejection, now: datetime
    ) -> None:
        """Count a refused message by its reason and park it, with the reason, on the DLQ."""
        self.stats.dlq_by_reason[rejection.reason.value] += 1
        record = dead_letter(message.value or b"", message.key, source, rejection, now)
        await self.outbox.send_dead_letter(message.key, record)
