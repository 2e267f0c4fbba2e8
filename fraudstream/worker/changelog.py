"""Profile changelog writes, one Kafka record batch per changelog partition per processed batch.

Faust's table sends one changelog record per assignment through its producer buffer (a
future, a callback and a queue hop per record: ~95 µs each, measured). The worker instead
keeps the last value of each key touched by a batch of transactions and sends it as one
record batch per changelog partition. :meth:`ChangelogBatch.flush` returns once the broker
has the records, and the worker acknowledges the batch's offsets only after that, so Faust
never commits an offset whose profile change could still be lost.

The records are exactly what Faust itself would write (raw key, raw value, the source
event's partition), so recovery, standbys and rebalancing read them like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol


class BatchProducer(Protocol):
    """The aiokafka producer calls a flush needs (``AIOKafkaProducer`` has them)."""

    def create_batch(self) -> Any:
        """An empty record batch builder."""

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        """Queue a filled batch; returns a future set when the broker has it."""

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partitions (waits for its metadata)."""


class ChangelogBatch:
    """The latest value per key and partition since the last flush."""

    def __init__(self) -> None:
        self._pending: dict[int, dict[bytes, bytes | None]] = {}

    def put(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Record ``key`` = ``value`` for the changelog ``partition`` (a later put wins).

        ``None`` is a tombstone: recovery deletes the key, and compaction drops it.
        """
        records = self._pending.get(partition)
        if records is None:
            records = self._pending[partition] = {}
        records[key] = value

    def __len__(self) -> int:
        return sum(len(records) for records in self._pending.values())

    def by_partition(self) -> dict[int, ChangelogBatch]:
        """The pending records split by changelog partition (for one transaction each)."""
        split: dict[int, ChangelogBatch] = {}
        for partition, records in self._pending.items():
            part = split[partition] = ChangelogBatch()
            part._pending[partition] = dict(records)
        return split

    async def flush(self, producer: BatchProducer, topic: str) -> dict[int, int]:
        """Send every pending record and wait until the broker has them all.

        Returns the offset of the last record written to each partition. Raises what the
        producer raises (after its own retries); the pending records are then kept, so a
        caller may not acknowledge the offsets they came from.
        """
        sends: list[tuple[int, int, asyncio.Future[Any]]] = []
        for partition, records in self._pending.items():
            for count, future in await send_record_batches(
                producer, topic, partition, records.items()
            ):
                sends.append((partition, count, future))
        results = await asyncio.gather(*(future for _, _, future in sends))
        last_offsets: dict[int, int] = {}
        for (partition, count, _), metadata in zip(sends, results, strict=True):
            last = metadata.offset + count - 1
            last_offsets[partition] = max(last, last_offsets.get(partition, last))
        self._pending.clear()
        return last_offsets


async def send_record_batches(
    producer: BatchProducer,
    topic: str,
    partition: int,
    records: Iterable[tuple[bytes | None, bytes | None]],
) -> list[tuple[int, asyncio.Future[Any]]]:
    """Queue ``records`` (key, value) for one partition in as few record batches as fit.

    Returns each batch's record count and the future its broker acknowledgement sets; the
    records keep their order. One batch costs one future and one queue hop, where a
    record sent on its own costs that each.
    """
    sent: list[tuple[int, asyncio.Future[Any]]] = []
    batch, count = producer.create_batch(), 0
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:  # batch is full
            sent.append((count, await _send(producer, batch, topic, partition)))
            batch, count = producer.create_batch(), 0
            batch.append(key=key, value=value, timestamp=None)  # the first always fits
        count += 1
    if count:
        sent.append((count, await _send(producer, batch, topic, partition)))
    return sent


async def _send(
    producer: BatchProducer, batch: Any, topic: str, partition: int
) -> asyncio.Future[Any]:
    batch.close()
    future: asyncio.Future[Any] = await producer.send_batch(batch, topic, partition=partition)
    return future
