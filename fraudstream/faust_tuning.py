"""Consumer knobs Faust does not expose, applied where Faust builds its aiokafka consumer.

faust-streaming 0.15 hard-codes ``fetch_max_wait_ms=1500`` for the worker's consumer. A broker
that holds a fetch until that deadline even when data arrives (Tansu does; measured: p50
delivery 376 ms at 1500, 128 ms at 500, 7 ms at 20) then adds up to that much latency to every
alert. Real Kafka answers as soon as data is there, so a lower value only costs a few more idle
fetch requests per second.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_ORIGINAL = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_fetch_max_wait_ms: int | None = None


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _ORIGINAL(self, transport)
    if _fetch_max_wait_ms is not None:
        # aiokafka reads this attribute when start() builds its Fetcher.
        consumer._fetch_max_wait_ms = _fetch_max_wait_ms
    return consumer


def set_fetch_max_wait(milliseconds: int) -> None:
    """Make every worker consumer created from now on use ``milliseconds`` as fetch wait."""
    global _fetch_max_wait_ms
    _fetch_max_wait_ms = milliseconds
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
