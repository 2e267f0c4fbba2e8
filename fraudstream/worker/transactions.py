"""Exactly-once processing: one Kafka transaction per input partition and processed batch.

Under ``FRAUDSTREAM_PROCESSING_GUARANTEE=exactly_once`` the worker owns one transactional
aiokafka producer per assigned input partition, with the stable transactional id
``<app id>-tx-<partition>``. For each processed batch and each input partition it read, one
transaction carries everything that partition's messages produced: alerts, dead letters,
decisions and shadow hits (held by :class:`fraudstream.worker.outbox.BatchOutbox`, sent as
record batches), the partition's profile, pending-label and merchant changelog records (the
changelog partition is the input partition), and the consumer group's offsets past the batch's
last message. The batch is acknowledged to Faust only after every commit returned, so a
``read_committed`` reader sees each output once, and a restarted worker's tables (recovered
with ``read_committed``) hold exactly the state of the offsets it resumes from.

Faust's own exactly-once (``processing_guarantee="exactly_once"``) is not used for this: its
transaction manager logs a failed commit or a fenced producer as a warning and carries on, picks
a send's transaction from the record's destination partition rather than its source, and has
no batch API for the changelog. The worker keeps Faust's ``exactly_once`` mode for what it does
right on the consuming side (``read_committed``, last-stable-offset highwaters, recovery past
aborted records) and hands its transaction hooks to :class:`PartitionTransactions`
(:func:`fraudstream.worker.patches.route_transactions`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from aiokafka import TopicPartition

from fraudstream.worker.changelog import BatchProducer
from fraudstream.worker.handler import BatchOffsets
from fraudstream.worker.outbox import BatchOutbox, OutputRecord, send_outputs
from fraudstream.worker.state import StateChanges

log = logging.getLogger("fraudstream")


class TransactionalProducer(BatchProducer, Protocol):
    """The aiokafka producer calls a transaction needs (``AIOKafkaProducer`` has them)."""

    async def start(self) -> None:
        """Connect and init the transactional id: fences an older producer with the same id."""

    async def stop(self) -> None:
        """Close the producer."""

    async def begin_transaction(self) -> None:
        """Open a transaction."""

    async def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, int], group_id: str
    ) -> None:
        """Make the consumer group's offsets part of the open transaction."""

    async def commit_transaction(self) -> None:
        """Commit the open transaction."""

    async def abort_transaction(self) -> None:
        """Abort the open transaction."""


class TransactionFailed(RuntimeError):
    """A partition's transaction could not be committed (it was aborted where possible)."""

    def __init__(self, partition: int, cause: BaseException) -> None:
        super().__init__(
            f"transaction of input partition {partition} failed: {type(cause).__name__}: {cause}"
        )
        self.partition = partition


class PartitionTransactions:
    """One transactional producer per assigned input partition; commits a batch per partition."""

    def __init__(
        self,
        new_producer: Callable[[str], TransactionalProducer],
        outbox: BatchOutbox,
        write_changes: Callable[[StateChanges, BatchProducer], Awaitable[None]],
        *,
        app_id: str,
        group_id: str,
        input_topics: Iterable[str],
    ) -> None:
        self.new_producer = new_producer
        self.outbox = outbox
        self.write_changes = write_changes
        self.app_id = app_id
        self.group_id = group_id
        self.input_topics = frozenset(input_topics)
        self.producers: dict[int, TransactionalProducer] = {}
        #: Held while a partition's transaction runs, so a revocation waits for it.
        self.locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    def transactional_id(self, partition: int) -> str:
        """Stable per partition: whoever owns the partition next fences the previous owner."""
        return f"{self.app_id}-tx-{partition}"

    def partitions_of(self, tps: Iterable[Any]) -> set[int]:
        """The input partitions among ``tps`` (labels share the input's partition numbers)."""
        return {tp.partition for tp in tps if tp.topic in self.input_topics}

    async def on_rebalance(self, assigned: Iterable[Any], revoked: Iterable[Any]) -> None:
        """Close producers of revoked partitions, then start (and fence) those of assigned ones.

        Runs before Faust recovers the tables and reads the committed offsets: starting a
        producer inits its transactional id, which aborts whatever transaction the partition's
        previous owner left open (a killed worker's), so recovery reads settled changelogs.
        """
        mine = self.partitions_of(assigned)
        for partition in sorted(self.partitions_of(revoked) - mine):
            await self.close(partition)
        for partition in sorted(mine - set(self.producers)):
            producer = self.new_producer(self.transactional_id(partition))
            await producer.start()
            self.producers[partition] = producer
            log.info("transactional producer %s ready", self.transactional_id(partition))

    async def close(self, partition: int) -> None:
        """Stop the partition's producer once its running transaction (if any) is done."""
        async with self.locks[partition]:
            producer = self.producers.pop(partition, None)
            if producer is not None:
                await producer.stop()

    async def stop(self) -> None:
        """Stop every producer (worker shutdown)."""
        for partition in sorted(self.producers):
            await self.close(partition)

    async def commit_batch(self, changes: StateChanges, offsets: BatchOffsets) -> None:
        """Commit one transaction per input partition the batch read, all of them or raise.

        Raises :class:`TransactionFailed` for the first partition whose transaction failed;
        the caller must not acknowledge the batch (the worker exits instead).
        """
        outputs = self.outbox.take()
        changes_by_partition = changes.by_partition()
        offsets_by_partition: defaultdict[int, dict[TopicPartition, int]] = defaultdict(dict)
        for (topic, partition), offset in offsets.items():
            offsets_by_partition[partition][TopicPartition(topic, partition)] = offset + 1
        partitions = set(offsets_by_partition) | set(outputs) | set(changes_by_partition)
        for partition in sorted(partitions - set(offsets_by_partition) - set(self.producers)):
            # Faust keeps a revoked partition's table rows in memory; labels maturing there
            # change state another worker owns now. Its owner has the true state: skip it.
            log.warning(
                "partition %d is not assigned here (any more): %d state changes and %d "
                "records of it not written",
                partition,
                len(changes_by_partition.get(partition, ())),
                len(outputs.get(partition, ())),
            )
            partitions.discard(partition)
        await asyncio.gather(
            *(
                self.commit_partition(
                    partition,
                    outputs.get(partition, []),
                    changes_by_partition.get(partition, StateChanges()),
                    offsets_by_partition.get(partition, {}),
                )
                for partition in sorted(partitions)
            )
        )

    async def commit_partition(
        self,
        partition: int,
        outputs: list[OutputRecord],
        changes: StateChanges,
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        """Outputs, changelog records and offsets of one input partition, in one transaction."""
        async with self.locks[partition]:
            producer = self.producers.get(partition)
            if producer is None:
                raise TransactionFailed(partition, LookupError("partition not assigned here"))
            try:
                await producer.begin_transaction()
            except Exception as exc:
                raise TransactionFailed(partition, exc) from exc
            try:
                sent = await send_outputs(producer, outputs)
                if changes:
                    await self.write_changes(changes, producer)
                await asyncio.gather(*sent)
                if offsets:
                    await producer.send_offsets_to_transaction(offsets, self.group_id)
                await producer.commit_transaction()
            except Exception as exc:
                await self.abort(partition, producer)
                raise TransactionFailed(partition, exc) from exc

    async def abort(self, partition: int, producer: TransactionalProducer) -> None:
        """Abort after a failure, best effort: a fenced producer cannot, and need not."""
        try:
            await producer.abort_transaction()
        except Exception as exc:
            log.warning(
                "aborting the transaction of partition %d failed too (%s: %s); the next owner "
                "of %s aborts it",
                partition,
                type(exc).__name__,
                exc,
                self.transactional_id(partition),
            )
