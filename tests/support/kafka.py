"""Reading a topic back in tests, with partitions and offsets."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord


def read_records(
    bootstrap: str, topic: str, expected: int, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic``, by (partition, offset), once ``expected`` arrived (or timeout).

    Counts records instead of trusting end offsets (Tansu understates them), then polls half
    a second more so extra records show up too.
    """

    async def go() -> list[ConsumerRecord[bytes, bytes]]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        await consumer.start()
        records: list[ConsumerRecord[bytes, bytes]] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(records) < expected and loop.time() < deadline:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    records += messages
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                records += messages
        finally:
            await consumer.stop()
        return sorted(records, key=lambda r: (r.partition, r.offset))

    return asyncio.run(go())
