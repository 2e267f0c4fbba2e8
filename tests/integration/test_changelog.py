"""ChangelogBatch against a real broker (Tansu, and Apache Kafka for the batch size): what lands
where, and when a flush fails."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerClosed

from fraudstream.kafka.topics import ensure_topics_sync
from fraudstream.local.apache_kafka import ApacheKafka
from fraudstream.local.tansu import TansuBroker
from fraudstream.settings import KafkaSettings
from fraudstream.worker.changelog import ChangelogBatch, send_record_batches
from tests.support.kafka import read_records

pytestmark = pytest.mark.integration

PARTITIONS = 4


def new_topic(broker: TansuBroker | ApacheKafka) -> str:
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


@pytest.mark.parametrize("which", ["tansu", "kafka"])
def test_a_batch_of_profiles_for_one_partition_goes_out_as_one_record_batch(
    which: str, request: pytest.FixtureRequest
) -> None:
    """At the worker's batch size, 500 profiles of the largest size (915 B) make one record
    batch, one request, which both brokers accept (each further batch of a partition would wait
    for the answer to the one before)."""
    server: TansuBroker | ApacheKafka = request.getfixturevalue(
        "broker" if which == "tansu" else "kafka"
    )
    topic = new_topic(server)
    size = KafkaSettings().producer_max_batch_bytes
    records = [(f"user-{i}".encode(), bytes([i % 256]) * 915) for i in range(500)]

    async def go() -> list[int]:
        producer = AIOKafkaProducer(bootstrap_servers=server.bootstrap, max_batch_size=size)
        await producer.start()
        try:
            sent = await send_record_batches(producer, topic, 2, records)
            await asyncio.gather(*(future for _, future in sent))
        finally:
            await producer.stop()
        return [count for count, _ in sent]

    assert asyncio.run(go()) == [500]
    landed = read_records(server.bootstrap, topic, 500)
    assert sorted((r.key, r.value) for r in landed) == sorted(records)


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
