"""A message whose processing raises goes to the DLQ; the worker keeps consuming."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.conftest import Pipeline
from tests.support.records import wait_until

pytestmark = pytest.mark.integration


def tx(user: str, n: int) -> dict[str, object]:
    return {"transactionId": f"{user}-{n}", "userId": user, "amount": 20, "timestamp": 1733320000}


async def changelog_partition_of(bootstrap: str, topic: str, key: bytes) -> int:
    """Partition of the changelog record stored under ``key`` (Faust JSON-encodes table keys)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        for _ in range(100):
            batches = await consumer.getmany(timeout_ms=200)
            for tp, messages in batches.items():
                if any(m.key == key for m in messages):
                    return tp.partition
    finally:
        await consumer.stop()
    raise AssertionError(f"no changelog record for {key!r} in {topic}")


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
    partition = asyncio.run(changelog_partition_of(bootstrap, changelog, b'"victim"'))
    asyncio.run(corrupt(bootstrap, changelog, partition, b'"victim"'))

    second = pipeline.start_worker()
    pipeline.send_json([tx("victim", 1)] + [tx(f"bystander-{i}", 1) for i in range(20)])
    dead = pipeline.read(pipeline.dlq_topic, expected=1)
    assert [d["reason"] for _, d in dead] == ["processing_error"]
    assert "victim-1" in dead[0][1]["payload"]
    assert dead[0][1]["error"].startswith("JSONDecodeError"), dead[0][1]

    # Everything after it is still processed, by the same process.
    wait_until(lambda: second.stats()["messagesIn"] >= 21, timeout=30)
    stats = second.stats()
    assert stats["dlq"] == 1, stats
    assert second.alive()
