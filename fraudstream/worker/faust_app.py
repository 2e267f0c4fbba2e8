"""The Faust App class the worker uses: Faust's own, optionally without its Monitor sensor."""

from __future__ import annotations

import logging
from time import monotonic
from typing import Any

import faust
from faust.sensors import Sensor

from fraudstream.kafka.connection import aiokafka_security
from fraudstream.settings import KafkaSettings

log = logging.getLogger("fraudstream")


class FraudstreamApp(faust.App):
    """faust.App that can leave out Faust's Monitor sensor and carries the worker's runtime.

    The Monitor records statistics for every event (Faust's own tooling reads them);
    fraudstream keeps its own counters, and the Monitor's per-event work is measurable.
    ``runtime`` is what the web views read (set by :mod:`fraudstream.worker.app`).
    """

    keep_monitor: bool = True
    runtime: Any = None

    async def on_first_start(self) -> None:
        """Before the consumer and its subscription start: the runtime creates missing topics."""
        await super().on_first_start()
        if self.runtime is not None:
            await self.runtime.declare_topics()

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


def faust_credentials(kafka: KafkaSettings) -> faust.types.auth.CredentialsT | None:
    """The broker security of :func:`fraudstream.kafka.connection.aiokafka_security`, for Faust."""
    args = aiokafka_security(kafka)
    protocol = args["security_protocol"]
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(args["ssl_context"])
    return faust.SASLCredentials(
        username=args["sasl_plain_username"],
        password=args["sasl_plain_password"],
        mechanism=args["sasl_mechanism"],
        ssl_context=args["ssl_context"],
    )
