"""What every benchmark needs: a broker, a real InfluxDB, full workers, RSS, progress.

Kept apart from the scripts so each of them reads top to bottom as "set up, measure, print".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fraudstream import native
from fraudstream.kafka.topics import ensure_topics_sync
from fraudstream.local.apache_kafka import KAFKA_VERSION, ApacheKafka
from fraudstream.local.tansu import TansuBroker
from fraudstream.local.worker_process import FAST_JOIN_ENV, WorkerProcess
from producer.generator import GeneratorParameters, ScenarioGenerator
from tests.support.influxdb_server import InfluxServer, InfluxV2Proxy
from tests.support.package_copy import copy_package

TOKEN = "benchmark-token"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """A terminated benchmark still leaves through its ``with`` blocks: broker, InfluxDB and
    workers are stopped instead of outliving it (seen: a Tansu left holding 580 MB)."""
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _exit_on_sigterm)
BUCKET = "bench"


USERS = 10_000

#: What the benchmarks run on: ``kafka`` (Apache Kafka from Maven Central jars, the default:
#: what users run) or ``tansu`` (the embedded broker of the demo, no JVM needed).
BROKERS = ("kafka", "tansu")
Broker = ApacheKafka | TansuBroker


def broker_name(broker: Broker) -> str:
    """The broker as the reports name it."""
    if isinstance(broker, ApacheKafka):
        return f"Apache Kafka {KAFKA_VERSION} (single-node KRaft, same machine)"
    return "Tansu 0.6 (embedded, in memory, same machine)"


def new_broker(name: str, workdir: Path) -> Broker:
    """A broker of kind ``name`` (see :data:`BROKERS`), not started yet: use it as a context
    manager, which starts it and stops it (and deletes Kafka's log dirs) with the benchmark."""
    if name == "kafka":
        return ApacheKafka()
    if name == "tansu":
        return TansuBroker(log_path=workdir / "tansu.log")
    raise ValueError(f"unknown broker {name!r}: one of {', '.join(BROKERS)}")


def transactions(
    count: int, seed: int = 1, prefix: str = "b", user_prefix: str = ""
) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs keyed by userId from the producer's labeled generator (2% fraud).

    Transaction ids are ``prefix`` + sequence number, so a benchmark can match alerts to sends.
    ``user_prefix`` gives the stream users of its own: a second stream through the same
    worker must not land on the first one's users, whose histories it would contradict
    (the generator's event times start over, so they would look like bursts).
    """
    params = GeneratorParameters(seed=seed, users=USERS)
    out = []
    for i, record in enumerate(itertools.islice(ScenarioGenerator(params), count)):
        message = record.message()
        message["transactionId"] = f"{prefix}{i}"
        key = record.key
        if user_prefix:
            message["userId"] = f"{user_prefix}{message['userId']}"
            key = str(message["userId"]).encode()
        out.append((key, orjson.dumps(message)))
    return out


def say(text: str) -> None:
    """Progress on stderr, so stdout stays the report."""
    print(text, file=sys.stderr, flush=True)


def rss_mib(pid: int, field_name: str = "VmRSS") -> float:
    """Resident (``VmRSS``) or peak resident (``VmHWM``) memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far, from ``/proc``."""
    # Fields after the command name start at the state (field 3); utime and stime are 14 and 15.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def influxdb(workdir: Path) -> Iterator[InfluxV2Proxy]:
    """A real influxd (1.x) behind the v2-write proxy, with the benchmark bucket."""
    server = InfluxServer(workdir / "influxd")
    server.start()
    server.create_database(BUCKET)
    proxy = InfluxV2Proxy(server.url, token=TOKEN).start()
    try:
        yield proxy
    finally:
        proxy.stop()
        server.stop()


def optional_influxdb(
    workdir: Path, enabled: bool
) -> contextlib.AbstractContextManager[InfluxV2Proxy | None]:
    """:func:`influxdb`, or nothing when the benchmark runs without the sink."""
    return influxdb(workdir) if enabled else contextlib.nullcontext(None)


@dataclass
class Deployment:
    """Topics and settings of one fraudstream app under test, and its worker processes."""

    broker: Broker
    workdir: Path
    partitions: int = 4
    influx: InfluxV2Proxy | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Where the workers start (their ``python -m fraudstream`` imports the package there).
    package_root: Path | None = None
    workers: list[WorkerProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:6]
        self.input_topic = f"bench-{tag}-in"
        self.alerts_topic = f"bench-{tag}-alerts"
        self.env = {
            "FRAUDSTREAM_BROKER_URL": self.broker.url,
            "FRAUDSTREAM_APP_ID": f"bench-{tag}",
            "FRAUDSTREAM_INPUT_TOPIC": self.input_topic,
            "FRAUDSTREAM_ALERTS_TOPIC": self.alerts_topic,
            "FRAUDSTREAM_DLQ_TOPIC": f"bench-{tag}-dlq",
            "FRAUDSTREAM_RULES_TOPIC": f"bench-{tag}-rules",
            "FRAUDSTREAM_SHADOW_TOPIC": f"bench-{tag}-shadow",
            "FRAUDSTREAM_PARTITIONS": str(self.partitions),
            "FRAUDSTREAM_INFLUX_ENABLED": "false",
            **FAST_JOIN_ENV,
        }
        if self.influx is not None:
            self.env |= {
                "FRAUDSTREAM_INFLUX_ENABLED": "true",
                "FRAUDSTREAM_INFLUX_URL": self.influx.url,
                "FRAUDSTREAM_INFLUX_TOKEN": TOKEN,
                "FRAUDSTREAM_INFLUX_BUCKET": BUCKET,
            }
        self.env |= self.extra_env
        topics = [self.input_topic, self.alerts_topic, self.env["FRAUDSTREAM_DLQ_TOPIC"]]
        ensure_topics_sync(self.broker.bootstrap, topics, self.partitions)

    def start_workers(self, count: int = 1) -> list[WorkerProcess]:
        """Start ``count`` more workers and wait until every worker owns partitions."""
        for _ in range(count):
            n = len(self.workers)
            env = {**self.env, "FRAUDSTREAM_DATA_DIR": str(self.workdir / f"worker-{n}")}
            log = self.workdir / f"worker-{n}.log"
            worker = WorkerProcess(env, log, log_level="warn", cwd=self.package_root)
            self.workers.append(worker.start())
        for worker in self.workers:
            worker.wait_ready()
        return self.workers

    def processed(self) -> int:
        """Messages read by all workers together."""
        return sum(worker.stats()["messagesIn"] for worker in self.workers)

    def cpu_seconds(self) -> float:
        """CPU time all workers together have used so far."""
        return sum(cpu_seconds(worker.process.pid) for worker in self.workers if worker.process)

    def stop(self) -> None:
        """Stop every worker (graceful, then killed)."""
        for worker in self.workers:
            worker.stop()


@dataclass(frozen=True)
class Drain:
    """How fast workers drained a backlog, by the clock and by the CPU time they used."""

    rate: float  # events/s from the first processed message until the last
    per_cpu_second: float  # events per second of the workers' CPU time over the same span


def drain(deployment: Deployment, count: int, timeout: float = 900.0) -> Drain:
    """Wait until ``count`` messages were processed; rate from the first processed message on.

    CPU time is sampled at the same two moments, so ``per_cpu_second`` does not depend on how
    much of the shared cores other processes took meanwhile, and the rate does.
    """
    first_at, first_n, first_cpu = None, 0, 0.0
    deadline = time.monotonic() + timeout
    last_report = time.monotonic()
    while time.monotonic() < deadline:
        done = deployment.processed()
        now = time.monotonic()
        if first_at is None and done > 0:
            first_at, first_n, first_cpu = now, done, deployment.cpu_seconds()
        if done >= count:
            break
        if now - last_report > 10:
            say(f"  ... {done:,}/{count:,} processed")
            last_report = now
        time.sleep(0.1)
    else:
        raise RuntimeError(f"workers processed {deployment.processed()} of {count} in time")
    assert first_at is not None
    cpu = deployment.cpu_seconds() - first_cpu
    return Drain(
        rate=(done - first_n) / max(1e-9, time.monotonic() - first_at),
        per_cpu_second=(done - first_n) / max(1e-9, cpu),
    )


def drain_rate(deployment: Deployment, count: int, timeout: float = 900.0) -> float:
    """Events/s from the first processed message until ``count`` were processed."""
    return drain(deployment, count, timeout).rate


async def produce_all(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Produce pre-built (key, value) pairs as fast as possible, then flush."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=262144)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def produce_sync(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """:func:`produce_all` from synchronous code."""
    asyncio.run(produce_all(bootstrap, topic, messages))


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


def as_row(values: dict[str, Any], columns: list[tuple[str, str, int]]) -> str:
    """One fixed-width table row: (key, format, width) per column."""
    cells = []
    for key, fmt, width in columns:
        value = values.get(key)
        cells.append(("-" if value is None else format(value, fmt)).rjust(width))
    return "".join(cells)


def compiled_copy(target: Path) -> Path | str:
    """A copy of the package with its core compiled (``fraudstream native build``), or why not."""
    print(f"compiling {', '.join(native.MODULES)} in a copy ...", file=sys.stderr)
    root = copy_package(target)
    try:
        native.build(root / "fraudstream")
    except native.NativeBuildError as exc:
        return f"the native build failed: {exc}"
    return root
