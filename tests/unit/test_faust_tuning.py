"""The fetch-wait override reaches the consumer Faust builds (and notices upstream changes)."""

from __future__ import annotations

import asyncio
import inspect

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from fraudstream.faust_tuning import set_fetch_max_wait


def test_faust_still_hard_codes_the_fetch_wait_we_override() -> None:
    source = inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    assert "fetch_max_wait_ms=1500" in source, "Faust changed: revisit fraudstream.faust_tuning"
    assert faust.__version__.startswith("0.15."), faust.__version__


def test_worker_consumer_gets_the_configured_fetch_wait() -> None:
    async def build() -> int:
        set_fetch_max_wait(42)
        app = faust.App("fetch-wait-test", broker="kafka://127.0.0.1:1")
        thread = app.consumer._thread
        consumer = thread._create_worker_consumer(app.transport)
        return int(consumer._fetch_max_wait_ms)

    assert asyncio.run(build()) == 42
