"""Reading a topic back in tests: every record from the start, with partitions and offsets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

Records = list[ConsumerRecord[bytes, bytes]]


def read_records(
    bootstrap: str,
    topic: str,
    expected: int = 0,
    *,
    until: Callable[[Records], bool] | None = None,
    timeout: float = 30.0,
    settle: float = 0.5,
    isolation_level: str = "read_uncommitted",
) -> Records:
    """Records of ``topic`` in arrival order, once ``expected`` arrived (or ``until`` holds).

    Counts records instead of reading up to the end offsets: Tansu understates them, and on
    Kafka they count transaction markers and aborted records too, so only a count of what a
    consumer sees is right on both brokers and for both isolation levels. Gives up after
    ``timeout`` seconds and returns what it has. Then keeps reading until nothing new arrived
    for ``settle`` seconds, so extra records (duplicates trailing behind) show up too.
    ``isolation_level="read_committed"`` reads as an exactly-once consumer does: records of
    aborted or still open transactions are not returned.
    """
    done = until or (lambda records: len(records) >= expected)

    async def go() -> Records:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            isolation_level=isolation_level,
        )
        await consumer.start()
        records: Records = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not done(records) and loop.time() < deadline:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    records += messages
            quiet_since = loop.time()
            while settle and loop.time() - quiet_since < settle:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    records += messages
                    quiet_since = loop.time()
        finally:
            await consumer.stop()
        return records

    return asyncio.run(go())
