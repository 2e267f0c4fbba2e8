"""ChangelogBatch against the real (Tansu) broker: what lands where, and when a flush fails."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerClosed

from fraudstream.kafka.topics import ensure_topics_sync
from fraudstream.local.tansu import TansuBroker
from fraudstream.worker.changelog import ChangelogBatch
from tests.support.kafka import read_records

pytestmark = pytest.mark.integration

PARTITIONS = 4


def new_topic(broker: TansuBroker) -> str:
    topic = f"changelog-{uuid.uuid4().hex[:8]}"
    ensure_topics_sync(broker.bootstrap, [topic], PARTITIONS)
    return topic


def read_all(broker: TansuBroker, topic: str, expected: int) -> list[tuple[int, int, bytes, bytes]]:
    """(partition, offset, key, value) of every record of ``topic``, in that order."""
    return sorted(
        (r.partition, r.offset, r.key or b"", r.value or b"")
        for r in read_records(broker.bootstrap, topic, expected)
    )


def test_flush_writes_the_last_value_per_key_to_its_partition(broker: TansuBroker) -> None:
    topic = new_topic(broker)

    async def go() -> dict[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            changes = ChangelogBatch()
            changes.put(0, b"a", b"a-old")
            changes.put(2, b"b", b"b-1")
            changes.put(0, b"a", b"a-new")  # the later value wins, one record
            changes.put(3, b"c", b"c-1")
            assert len(changes) == 3
            offsets = await changes.flush(producer, topic)
            assert len(changes) == 0
            assert await changes.flush(producer, topic) == {}  # nothing pending: nothing sent
        finally:
            await producer.stop()
        return offsets

    offsets = asyncio.run(go())
    records = read_all(broker, topic, 3)
    assert [(p, k, v) for p, _, k, v in records] == [
        (0, b"a", b"a-new"),
        (2, b"b", b"b-1"),
        (3, b"c", b"c-1"),
    ]
    assert offsets == {p: o for p, o, _, _ in records}


def test_flush_splits_what_does_not_fit_one_record_batch(broker: TansuBroker) -> None:
    """Thousands of profiles for one partition exceed the producer's batch size (16 KiB)."""
    topic = new_topic(broker)
    count = 2000
    value = b"x" * 240  # a typical stored profile

    async def go() -> dict[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            changes = ChangelogBatch()
            for i in range(count):
                changes.put(1, f"user-{i}".encode(), value)
            offsets = await changes.flush(producer, topic)
        finally:
            await producer.stop()
        return offsets

    offsets = asyncio.run(go())
    records = read_all(broker, topic, count)
    assert len(records) == count
    assert {k for _, _, k, _ in records} == {f"user-{i}".encode() for i in range(count)}
    assert {p for p, _, _, _ in records} == {1}
    assert offsets == {1: max(o for _, o, _, _ in records)}


def test_a_failed_flush_raises_and_keeps_the_changes(broker: TansuBroker) -> None:
    """The worker must not acknowledge offsets whose profile changes are not on the broker."""
    topic = new_topic(broker)

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        await producer.stop()  # a producer that can no longer send
        changes = ChangelogBatch()
        changes.put(0, b"a", b"1")
        with pytest.raises(ProducerClosed):
            await changes.flush(producer, topic)
        assert len(changes) == 1

    asyncio.run(go())
