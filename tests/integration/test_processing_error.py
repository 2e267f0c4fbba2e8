"""A message whose processing raises goes to the DLQ; the worker keeps consuming."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import Pipeline
from tests.support.kafka import read_records
from tests.support.records import wait_until

pytestmark = pytest.mark.integration


def tx(user: str, n: int) -> dict[str, object]:
    return {"transactionId": f"{user}-{n}", "userId": user, "amount": 20, "timestamp": 1733320000}


def changelog_partition_of(bootstrap: str, topic: str, key: bytes) -> int:
    """Partition of the changelog record stored under ``key`` (Faust JSON-encodes table keys)."""
    records = read_records(
        bootstrap, topic, until=lambda got: any(r.key == key for r in got), timeout=20, settle=0
    )
    partitions = [r.partition for r in records if r.key == key]
    assert partitions, f"no changelog record for {key!r} in {topic}"
    return partitions[0]


async def corrupt(bootstrap: str, topic: str, partition: int, key: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"\x00not a profile", key=key, partition=partition)
    finally:
        await producer.stop()


def test_a_failing_message_is_dead_lettered_and_the_stream_goes_on(pipeline: Pipeline) -> None:
    first = pipeline.start_worker()
    pipeline.send_json([tx("victim", 0)])
    first.wait_processed(1)
    assert first.stop() == 0

    # A corrupt profile in the changelog: recovery loads it, processing the user's next
    # transaction raises.
    changelog = f"{pipeline.env['FRAUDSTREAM_APP_ID']}-user-profiles-changelog"
    bootstrap = pipeline.broker.bootstrap
    partition = changelog_partition_of(bootstrap, changelog, b'"victim"')
    asyncio.run(corrupt(bootstrap, changelog, partition, b'"victim"'))

    second = pipeline.start_worker()
    pipeline.send_json([tx("victim", 1)] + [tx(f"bystander-{i}", 1) for i in range(20)])
    dead = pipeline.read(pipeline.dlq_topic, expected=1)
    assert [d["reason"] for _, d in dead] == ["processing_error"]
    assert "victim-1" in dead[0][1]["payload"]
    assert dead[0][1]["error"].startswith("ValueError"), dead[0][1]  # an unreadable history

    # Everything after it is still processed, by the same process.
    wait_until(lambda: second.stats()["messagesIn"] >= 21, timeout=30)
    stats = second.stats()
    assert stats["dlq"] == 1, stats
    assert second.alive()
