"""Faust knobs Faust does not expose: fetch wait, Monitor, root logger, batch plumbing.

The fetch wait: faust-streaming 0.15 hard-codes ``fetch_max_wait_ms=1500`` for the worker's
consumer. A broker that holds a fetch until that deadline even when data arrives (Tansu does;
measured: p50 delivery 376 ms at 1500, 128 ms at 500, 7 ms at 20) then adds up to that much
latency to every alert. Real Kafka answers as soon as data is there, so a lower value only
costs a few more idle fetch requests per second.
"""

from __future__ import annotations

import logging
import weakref
from time import monotonic
from typing import Any

import faust
from faust import streams as faust_streams
from faust.sensors import Sensor
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import EventT
from faust.utils.terminal import SpinnerHandler

log = logging.getLogger("fraudstream")

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


class FraudstreamApp(faust.App):
    """faust.App that can leave out Faust's Monitor sensor.

    The Monitor records statistics for every event (Faust's own tooling reads them);
    fraudstream keeps its own counters, and the Monitor's per-event work is measurable.
    """

    keep_monitor: bool = True

    def on_init_dependencies(self) -> Any:
        """Faust adds the Monitor to the sensors here; take it out again when not wanted."""
        dependencies = super().on_init_dependencies()
        if not self.keep_monitor:
            self.sensors.remove(self.monitor)
            # Without any sensor Faust warns "Missing sensor state" at every rebalance.
            self.sensors.add(RebalanceSensor())
        return dependencies


class RebalanceSensor(Sensor):
    """Logs how long each rebalance took; every per-event hook stays Faust's no-op."""

    def on_rebalance_end(self, app: Any, state: dict[str, Any]) -> None:
        """Rebalance done, recovery included."""
        started = state.get("time_start")
        if started is not None:
            log.info("rebalance done in %.1f s", monotonic() - started)


def raise_root_logger_level() -> None:
    """Undo the DEBUG root level Faust sets for its start-up spinner at ``-l warn`` and above.

    With the root at DEBUG every ``log.debug`` in aiokafka and Faust builds a record that the
    handlers then drop: ~3% of the worker's CPU in a profile. Call it once start-up is done.
    """
    root = logging.getLogger()
    levels = [h.level for h in root.handlers if not isinstance(h, SpinnerHandler)]
    if levels and root.level < min(levels):
        root.setLevel(min(levels))


def kafka_producer(app: faust.App) -> Any:
    """The started aiokafka producer under Faust's, for record batches Faust has no API for.

    Records sent through it are flushed by the ``producer.flush()`` Faust runs before every
    offset commit, like Faust's own sends.
    """
    return app.producer._ensure_producer()  # type: ignore[attr-defined]


def set_current_event(event: EventT) -> None:
    """Make ``event`` the one tables see, in this task only.

    Tables and the RocksDB store take the partition of a key from the current event; in a
    batch from ``take_events`` Faust leaves it at the last one fetched. Only the context
    variable is set: the stream's own attribute is what ``take_events`` reads while it
    fills the next batch in another task.
    """
    faust_streams._current_event.set(weakref.ref(event))
