"""Read a past range of a topic without joining a group or committing anything (backtests).

A range is given per partition by offsets, or for all partitions by broker time; it ends at
the end offsets as of the start of the read, so a live stream does not make it endless.
No Faust here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from fraudstream.kafka.connection import CLIENT_REQUEST_TIMEOUT_MS
from fraudstream.kafka.topics import admin_client

#: Longest one fetch waits, ms.
FETCH_MS = 500


@dataclass(frozen=True, slots=True)
class Span:
    """Which records to read: offsets ``[from_offset, to_offset)`` of every partition, or
    broker timestamps ``[from_ms, to_ms)``; None leaves that end open."""

    from_offset: int | None = None
    to_offset: int | None = None
    from_ms: int | None = None
    to_ms: int | None = None


@dataclass(frozen=True, slots=True)
class PastRecord:
    """One record of the range."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp_ms: int


async def read_span(
    bootstrap: str, topic: str, span: Span, security: Mapping[str, Any] | None = None
) -> list[PastRecord]:
    """Every record of ``topic`` in ``span``, ordered by broker time (then partition, offset).

    One user's records stay in their partition's order (producers key by userId).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,  # no group: a backtest never moves a deployment's offsets
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=CLIENT_REQUEST_TIMEOUT_MS,
        **(security or {}),
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic, security)]
        if not tps:
            return []
        consumer.assign(tps)
        starts = await _starts(consumer, tps, span)
        ends = await consumer.end_offsets(tps)
        if span.to_offset is not None:
            ends = {tp: min(end, span.to_offset) for tp, end in ends.items()}
        records: list[PastRecord] = []
        open_tps = []
        for tp in tps:
            if starts[tp] < ends[tp]:
                consumer.seek(tp, starts[tp])
                open_tps.append(tp)
        while open_tps:
            batches = await consumer.getmany(*open_tps, timeout_ms=FETCH_MS)
            for tp, messages in batches.items():
                for m in messages:
                    if m.offset >= ends[tp]:
                        continue
                    if span.to_ms is not None and m.timestamp >= span.to_ms:
                        continue
                    records.append(PastRecord(m.key, m.value, tp.partition, m.offset, m.timestamp))
            open_tps = [tp for tp in open_tps if await consumer.position(tp) < ends[tp]]
        records.sort(key=lambda r: (r.timestamp_ms, r.partition, r.offset))
        return records
    finally:
        await consumer.stop()


async def topic_partitions(
    bootstrap: str, topic: str, security: Mapping[str, Any] | None = None
) -> list[int]:
    """The partition numbers of ``topic`` (empty when it does not exist)."""
    async with admin_client(bootstrap, security, CLIENT_REQUEST_TIMEOUT_MS) as admin:
        # list first: asking for one topic's metadata makes a broker with auto-creation on
        # create it, and a backtest must not leave topics behind
        if topic not in set(await admin.list_topics()):
            return []
        described = await admin.describe_topics([topic])
    return sorted(
        p["partition"]
        for t in described
        if t["topic"] == topic and t["error_code"] == 0
        for p in t["partitions"]
    )


async def _starts(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], span: Span
) -> dict[TopicPartition, int]:
    beginning = await consumer.beginning_offsets(tps)
    starts = {tp: max(beginning[tp], span.from_offset or 0) for tp in tps}
    if span.from_ms is not None:
        ends = await consumer.end_offsets(tps)
        found = await consumer.offsets_for_times({tp: span.from_ms for tp in tps})
        for tp in tps:
            at = found.get(tp)
            starts[tp] = max(starts[tp], at.offset if at is not None else ends[tp])
    return starts
