"""Broker (embedded Tansu unless ``FRAUDSTREAM_BROKER_URL`` is set) plus one worker process.

``fraudstream demo`` and ``fraudstream evaluate`` both run the real pipeline this way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError

from fraudstream.kafka.connection import (
    AuthFailureWatch,
    aiokafka_security,
    bootstrap_of,
    connection_failure,
)
from fraudstream.kafka.topics import ensure_topics_sync
from fraudstream.local.tansu import TansuBroker
from fraudstream.local.worker_process import FAST_JOIN_ENV, WorkerProcess
from fraudstream.settings import Settings


class BrokerUnreachable(RuntimeError):
    """The broker could not be reached or refused the login; the message says which."""


@dataclass(frozen=True)
class LocalPipeline:
    """A ready worker and what a client needs to talk to its broker."""

    settings: Settings
    worker: WorkerProcess
    bootstrap: str
    security: Mapping[str, Any]


@contextmanager
def local_pipeline(
    workdir: Path, say: Callable[[str], None], extra_env: Mapping[str, str] | None = None
) -> Iterator[LocalPipeline]:
    """Start (or reuse) a broker, create the worker's topics, start a worker; stop them on exit."""
    external = os.environ.get("FRAUDSTREAM_BROKER_URL")
    broker: TansuBroker | None = None
    worker: WorkerProcess | None = None
    saved_env = dict(os.environ)
    try:
        if external:
            broker_url = external
            say(f"using the broker at {broker_url}")
        else:
            broker = TansuBroker(log_path=workdir / "broker.log").start()
            broker_url = broker.url
            say(f"started the embedded Tansu broker at {broker.bootstrap}")
        env = {
            "FRAUDSTREAM_BROKER_URL": broker_url,
            "FRAUDSTREAM_DATA_DIR": str(workdir / "data"),
            **(extra_env or {}),
            **(FAST_JOIN_ENV if broker is not None else {}),
        }
        os.environ.update(env)  # this process and the worker read the same settings
        settings = Settings()
        security = aiokafka_security(settings.kafka)
        bootstrap = bootstrap_of(broker_url)
        # Every topic the worker reads exists before it subscribes: one created later (labels
        # sent by evaluate) would rebalance the group mid-run, and the broker's auto-creation
        # would give it one partition instead of the input's.
        topics = settings.worker_topics
        with AuthFailureWatch() as watch:  # a wrong password: one clear line, not a traceback
            try:
                ensure_topics_sync(bootstrap, topics, settings.kafka.partitions, security)
            except KafkaError as exc:
                raise BrokerUnreachable(
                    connection_failure(exc, settings.kafka, watch.failed)
                ) from None
        worker = WorkerProcess(env, workdir / "worker.log", log_level="warn").start()
        say(f"starting the worker (log: {worker.log_path}) ...")
        worker.wait_ready()
        yield LocalPipeline(settings, worker, bootstrap, security)
    finally:
        if worker is not None:
            worker.stop()
        if broker is not None:
            broker.stop()
        # The settings were exported for this run only: a second pipeline in the same process
        # (evaluate's no-label pass) must not find the first one's stopped broker there.
        os.environ.clear()
        os.environ.update(saved_env)
