"""A batch's outputs: held until the batch is done, then one record batch per destination."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from fraudstream.worker.outbox import BatchOutbox, partition_for

ALERTS, DLQ, DECISIONS = "alerts", "dlq", "decisions"


class FakeBatch:
    """aiokafka's record batch builder as a list; ``append`` says None once it is full."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.records: list[tuple[bytes | None, bytes | None]] = []
        self.capacity = capacity

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: None) -> object | None:
        if len(self.records) == self.capacity:
            return None  # full, as aiokafka's builder says it
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        pass


class FakeProducer:
    """Keeps every sent batch; ``fail`` makes the broker refuse them (after its retries)."""

    def __init__(self, partitions: int = 4, capacity: int = 100, fail: bool = False) -> None:
        self.partitions, self.capacity, self.fail = partitions, capacity, fail
        self.sent: list[tuple[str, int, list[tuple[bytes | None, bytes | None]]]] = []

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, batch.records))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(TimeoutError("broker did not acknowledge"))
        else:
            future.set_result(None)
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))


def flush(outbox: BatchOutbox, producer: FakeProducer) -> int:
    return asyncio.run(outbox.flush(producer))


def test_keyed_records_go_where_kafkas_default_partitioner_puts_them() -> None:
    partitioner = DefaultPartitioner()
    for partitions in (1, 3, 4, 12):
        everything = list(range(partitions))
        for n in range(200):
            key = f"user-{n}".encode()
            expected = partitioner(key, everything, everything)
            assert partition_for(key, everything, sticky=n) == expected


def test_nothing_leaves_before_the_flush_and_a_flush_sends_every_record_once() -> None:
    async def hold(outbox: BatchOutbox) -> None:
        await outbox.send_alert(b"u1", b"a1", partition=0)
        await outbox.send_dead_letter(None, b"d1", partition=1)
        await outbox.send_decision(b"u1", b"x1", partition=0)

    outbox, producer = BatchOutbox(ALERTS, DLQ), FakeProducer()
    asyncio.run(hold(outbox))
    assert producer.sent == []
    assert flush(outbox, producer) == 2, "the decisions topic is off: no decision held"
    assert sorted(topic for topic, _, _ in producer.sent) == [ALERTS, DLQ]
    assert flush(outbox, producer) == 0, "a flush empties the outbox"


def test_a_batch_goes_out_as_one_record_batch_per_destination_partition_in_order() -> None:
    async def hold(outbox: BatchOutbox) -> None:
        for n in range(30):  # a user's transactions come from one input partition
            user = f"u{n % 3}".encode()
            await outbox.send_alert(user, b"%s-%d" % (user, n), partition=n % 3)

    outbox, producer = BatchOutbox(ALERTS, DLQ), FakeProducer(partitions=8)
    asyncio.run(hold(outbox))
    assert flush(outbox, producer) == 30
    destinations = [(topic, partition) for topic, partition, _ in producer.sent]
    assert len(destinations) == len(set(destinations)), "one record batch per partition"
    for _, partition, records in producer.sent:
        for key, _ in records:
            assert partition == partition_for(key, list(range(8)), sticky=0)
    by_user: dict[bytes, list[int]] = {}
    for _, _, records in producer.sent:
        for key, value in records:
            assert key is not None and value is not None
            by_user.setdefault(key, []).append(int(value.split(b"-")[1]))
    assert by_user == {f"u{u}".encode(): list(range(u, 30, 3)) for u in range(3)}, "in order"


def test_a_full_record_batch_continues_in_the_next_one() -> None:
    async def hold(outbox: BatchOutbox) -> None:
        for n in range(25):
            await outbox.send_alert(b"u1", b"%d" % n, partition=0)

    outbox, producer = BatchOutbox(ALERTS, DLQ), FakeProducer(capacity=10)
    asyncio.run(hold(outbox))
    assert flush(outbox, producer) == 25
    assert [len(records) for _, _, records in producer.sent] == [10, 10, 5]
    values = [value for _, _, records in producer.sent for _, value in records]
    assert values == [b"%d" % n for n in range(25)]


def test_keyless_records_of_one_flush_share_one_partition() -> None:
    async def hold(outbox: BatchOutbox) -> None:
        for n in range(10):
            await outbox.send_dead_letter(None, b"%d" % n, partition=n % 4)

    outbox, producer = BatchOutbox(ALERTS, DLQ), FakeProducer()
    asyncio.run(hold(outbox))
    flush(outbox, producer)
    assert len(producer.sent) == 1 and len(producer.sent[0][2]) == 10


def test_a_flush_the_broker_does_not_acknowledge_raises() -> None:
    async def hold(outbox: BatchOutbox) -> None:
        await outbox.send_alert(b"u1", b"a1", partition=0)

    outbox = BatchOutbox(ALERTS, DLQ)
    asyncio.run(hold(outbox))
    with pytest.raises(TimeoutError):
        flush(outbox, FakeProducer(fail=True))
