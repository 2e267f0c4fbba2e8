"""A bare Faust agent that only decodes JSON: the framework's own cost, for comparison.

``BENCH_SAME_SETTINGS=1`` gives it fraudstream's consumer/producer settings, its Faust app
class (no Monitor sensor), root-logger fix and batches of the same size and wait as the
worker's (run.py adds ``-L uvloop`` too); otherwise Faust's defaults, one message at a
time. Counts are served on ``/count`` of ``BENCH_WEB_PORT``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View

from fraudstream.settings import Settings
from fraudstream.worker.faust_app import FraudstreamApp
from fraudstream.worker.patches import raise_root_logger_level, set_fetch_max_wait

SAME = os.environ.get("BENCH_SAME_SETTINGS") == "1"
settings = Settings()  # the worker's, applied only with BENCH_SAME_SETTINGS=1
extra: dict[str, Any] = {}
if SAME:
    set_fetch_max_wait(settings.kafka.consumer_fetch_max_wait_ms)
    extra["producer_linger"] = settings.kafka.producer_linger_ms / 1000.0

app = (FraudstreamApp if SAME else faust.App)(
    os.environ["BENCH_APP_ID"],
    broker=os.environ["BENCH_BROKER_URL"],
    value_serializer="raw",
    web_port=int(os.environ["BENCH_WEB_PORT"]),
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=6,
    broker_rebalance_timeout=6,
    broker_heartbeat_interval=2,
    topic_partitions=4,
    datadir=os.environ["BENCH_DATA_DIR"],
    **extra,
)
if SAME:
    app.keep_monitor = settings.worker.faust_monitor  # type: ignore[attr-defined]

    @app.task
    async def quiet_root_logger() -> None:
        """As in the worker."""
        raise_root_logger_level()


topic = app.topic(os.environ["BENCH_TOPIC"], value_serializer="raw")
#: ``firstCount`` messages were decoded by ``first``; the rate is taken from there to ``last``,
#: and the process's CPU time (all threads) from ``cpuFirst`` to ``cpuLast``.
state = {"count": 0, "firstCount": 0, "first": 0.0, "last": 0.0, "cpuFirst": 0.0, "cpuLast": 0.0}


def count(values: int) -> None:
    now, cpu = time.monotonic(), time.process_time()
    state["count"] += values
    if not state["firstCount"]:
        state["first"], state["firstCount"], state["cpuFirst"] = now, values, cpu
    state["last"], state["cpuLast"] = now, cpu


@app.agent(topic)
async def decode(stream: Any) -> None:
    """Decode each message; nothing else."""
    if SAME:
        async for events in stream.take_events(
            settings.worker.batch_max_events, settings.worker.batch_max_wait
        ):
            for event in events:
                orjson.loads(event.value)
            count(len(events))
    else:
        async for value in stream:
            orjson.loads(value)
            count(1)


@app.page("/count")
class Count(View):
    """Messages decoded, the first/last monotonic timestamps and CPU times."""

    async def get(self, request: Request) -> Response:
        return self.json(state)
