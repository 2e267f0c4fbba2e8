"""The rules control topic: every version of every rule definition, keyed by rule id.

The topic is compacted (Kafka keeps at least the latest record of each rule) and read
without a consumer group: every reader assigns itself all partitions and starts from the
beginning, so each worker and each CLI call sees every definition. Validating a definition
is the core's job; :func:`apply_record` adds what only the topic knows (the key, tombstones).
No Faust here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pydantic import ValidationError

from fraudstream.core.rule_definitions import (
    ChangeStatus,
    RuleChange,
    RuleDefinition,
    RuleSet,
    definition_from_json,
    definition_to_json,
    validation_summary,
)
from fraudstream.kafka.connection import CLIENT_REQUEST_TIMEOUT_MS
from fraudstream.kafka.topics import admin_client

#: Partitions of a rules topic this module creates: one keeps every change in one order.
RULES_PARTITIONS = 1
#: A compacted topic keeps each rule's latest record forever.
RULES_TOPIC_CONFIG = {"cleanup.policy": "compact"}
#: Longest one fetch waits for a change, ms (the worker applies a change within a second).
POLL_MS = 200


@dataclass(frozen=True, slots=True)
class RuleRecord:
    """One record of the rules topic as read: the raw key and value and where it was."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    #: The broker's timestamp, Unix milliseconds.
    timestamp_ms: int

    @property
    def key_text(self) -> str | None:
        """The key as text (the rule id it claims), or None when absent."""
        return None if self.key is None else self.key.decode("utf-8", errors="replace")


def apply_record(rules: RuleSet, record: RuleRecord) -> RuleChange:
    """Validate one record of the topic and apply it; a bad one is refused, never raised."""
    claimed = record.key_text
    if record.value is None:
        error = "a tombstone: rules are never deleted, publish a disabled version instead"
        return RuleChange(ChangeStatus.REFUSED, claimed, None, error=error)
    try:
        definition = definition_from_json(record.value)
    except ValidationError as exc:
        return RuleChange(ChangeStatus.REFUSED, claimed, None, error=validation_summary(exc))
    if claimed != definition.id:
        error = f"key {claimed!r} is not the rule id (compaction would keep the wrong record)"
        return RuleChange(ChangeStatus.REFUSED, definition.id, definition.version, error=error)
    return rules.apply(definition)


async def ensure_rules_topic(
    bootstrap: str, topic: str, security: Mapping[str, Any] | None = None
) -> None:
    """Create the compacted rules topic when it does not exist yet."""
    async with admin_client(bootstrap, security, CLIENT_REQUEST_TIMEOUT_MS) as admin:
        if topic not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                new = NewTopic(
                    topic,
                    num_partitions=RULES_PARTITIONS,
                    replication_factor=1,
                    topic_configs=RULES_TOPIC_CONFIG,
                )
                await admin.create_topics([new])


class RulesTopic:
    """Reads the whole rules topic, then follows it; publishes new definitions.

    A consumer assigned to every partition (no group, nothing committed) and a producer that
    waits for every replica's acknowledgement; both are made in :meth:`start`, inside the
    event loop.
    """

    def __init__(
        self, bootstrap: str, topic: str, security: Mapping[str, Any] | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.security = dict(security or {})
        self.partitions: list[TopicPartition] = []
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        """The started producer (clients exist only between :meth:`start` and :meth:`stop`)."""
        if self._producer is None:
            raise RuntimeError("the rules topic is not started")
        return self._producer

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The started consumer."""
        if self._consumer is None:
            raise RuntimeError("the rules topic is not started")
        return self._consumer

    async def start(self) -> None:
        """Create the topic if missing, connect, and assign every partition from the start."""
        await ensure_rules_topic(self.bootstrap, self.topic, self.security)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            request_timeout_ms=CLIENT_REQUEST_TIMEOUT_MS,
            **self.security,
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,  # no group: every reader sees every record, nothing is committed
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=CLIENT_REQUEST_TIMEOUT_MS,
            **self.security,
        )
        await self._consumer.start()
        partitions = await self._producer.partitions_for(self.topic)
        self.partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(self.partitions)
        await self._consumer.seek_to_beginning(*self.partitions)

    async def read_to_end(self) -> list[RuleRecord]:
        """Every record up to the end offsets as of now, in topic order."""
        end = await self.consumer.end_offsets(self.partitions)
        records: list[RuleRecord] = []
        while True:
            behind = [tp for tp in self.partitions if await self.consumer.position(tp) < end[tp]]
            if not behind:
                return records
            records.extend(await self.poll())

    async def poll(self, timeout_ms: int = POLL_MS) -> list[RuleRecord]:
        """The records that arrived since the last call (waits up to ``timeout_ms``)."""
        batches = await self.consumer.getmany(*self.partitions, timeout_ms=timeout_ms)
        return [
            RuleRecord(m.key, m.value, tp.partition, m.offset, m.timestamp)
            for tp, messages in sorted(batches.items(), key=lambda item: item[0].partition)
            for m in messages
        ]

    async def publish(self, definition: RuleDefinition) -> tuple[int, int]:
        """Send one definition keyed by its id; returns its (partition, offset)."""
        return await self.publish_raw(definition.id.encode(), definition_to_json(definition))

    async def publish_raw(self, key: bytes, value: bytes) -> tuple[int, int]:
        """Send one record as is (tests use it to put what the CLI would refuse on the topic)."""
        metadata = await self.producer.send_and_wait(self.topic, value, key=key)
        return metadata.partition, metadata.offset

    async def stop(self) -> None:
        """Close the clients that were started."""
        consumer, producer = self._consumer, self._producer
        self._consumer = self._producer = None
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> RulesTopic:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
