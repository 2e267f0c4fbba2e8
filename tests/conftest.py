"""Shared fixtures: real brokers (Tansu, Apache Kafka) for the session and real worker processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from hypothesis import HealthCheck, settings

from fraudstream.kafka.topics import ensure_topics_sync
from fraudstream.local.apache_kafka import ApacheKafka, KafkaUnavailable
from fraudstream.local.tansu import BrokerUnavailable, TansuBroker
from fraudstream.local.worker_process import FAST_JOIN_ENV, WorkerProcess
from tests.support.environment import require
from tests.support.kafka import Records, read_records

#: InfluxDB fixtures (influx_server, fresh_influx_server, influx_proxy, influx_bucket,
#: influx_sink_factory): a real influxd 1.6 behind the v2 write proxy.
pytest_plugins = ["tests.support.influxdb"]
#: Partitions of every test topic (input, labels, outputs).
PARTITIONS = 4


# Two shared cores also run brokers and workers: wall-clock limits would make tests flaky.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A real Kafka-protocol broker (Tansu) on a free port for the whole session."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    try:
        tansu = TansuBroker(log_path=log).start()
    except BrokerUnavailable as exc:
        require(f"embedded broker unavailable: {exc}")
    yield tansu
    tansu.stop()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    """A real Apache Kafka 4.1 broker (KRaft, PLAINTEXT + SASL_SSL) for the whole session.

    Needs Java 17+ (the jars come from Maven Central, cached): without it the tests that use
    it skip, except under ``CI=true`` where they fail.
    """
    try:
        broker = ApacheKafka(tmp_path_factory.mktemp("kafka")).start()
    except KafkaUnavailable as exc:
        require(f"Apache Kafka unavailable: {exc}")
    yield broker
    broker.stop()


class Pipeline:
    """Topics, settings and worker processes of one test, isolated by unique names."""

    def __init__(
        self,
        broker: TansuBroker | ApacheKafka,
        tmp_path: Path,
        *,
        labels_topic_exists: bool = True,
        **overrides: str,
    ) -> None:
        tag = uuid.uuid4().hex[:8]
        self.broker = broker
        self.tmp_path = tmp_path
        self.input_topic = f"tx-{tag}"
        self.alerts_topic = f"alerts-{tag}"
        self.dlq_topic = f"dlq-{tag}"
        self.labels_topic = f"labels-{tag}"
        #: Each test has its own rules (a change in one test must not reach another's workers).
        self.rules_topic = f"rules-{tag}"
        self.shadow_topic = f"shadow-{tag}"
        self.env = {
            "FRAUDSTREAM_BROKER_URL": broker.url,
            "FRAUDSTREAM_APP_ID": f"fraudstream-test-{tag}",
            "FRAUDSTREAM_INPUT_TOPIC": self.input_topic,
            "FRAUDSTREAM_ALERTS_TOPIC": self.alerts_topic,
            "FRAUDSTREAM_DLQ_TOPIC": self.dlq_topic,
            "FRAUDSTREAM_LABELS_TOPIC": self.labels_topic,
            "FRAUDSTREAM_RULES_TOPIC": self.rules_topic,
            "FRAUDSTREAM_SHADOW_TOPIC": self.shadow_topic,
            "FRAUDSTREAM_DATA_DIR": str(tmp_path / "data"),
            **FAST_JOIN_ENV,
            **overrides,
        }
        self.workers: list[WorkerProcess] = []
        ensure_topics_sync(
            broker.bootstrap,
            [
                self.input_topic,
                self.alerts_topic,
                self.dlq_topic,
                *([self.labels_topic] if labels_topic_exists else []),
                self.shadow_topic,
            ],
            PARTITIONS,
        )

    def start_worker(self) -> WorkerProcess:
        """Start a real worker process and wait until it owns the input partitions."""
        log = self.tmp_path / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess(self.env, log).start()
        self.workers.append(worker)
        worker.wait_ready()
        return worker

    def send(self, messages: list[tuple[bytes | None, bytes]], topic: str | None = None) -> None:
        """Produce (key, value) pairs to the input topic (or ``topic``) and wait for the acks."""

        async def go() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.broker.bootstrap)
            await producer.start()
            try:
                for key, value in messages:
                    await producer.send_and_wait(topic or self.input_topic, value, key=key)
            finally:
                await producer.stop()

        asyncio.run(go())

    def send_json(self, records: list[dict[str, object]]) -> None:
        """Produce JSON transactions keyed by their userId."""
        self.send([(str(r["userId"]).encode(), orjson.dumps(r)) for r in records])

    def read(
        self,
        topic: str,
        expected: int = 0,
        timeout: float = 30.0,
        until: Callable[[list[tuple[bytes, dict]]], bool] | None = None,
        settle: float = 0.0,
        isolation_level: str = "read_uncommitted",
    ) -> list[tuple[bytes, dict]]:
        """Read a topic from the start until ``expected`` records (or ``until``) or the timeout.

        Counts records, not end offsets (see :func:`tests.support.kafka.read_records`). With
        ``settle``, keep reading until nothing new arrived for that many seconds (to count
        duplicates that trail behind).
        """
        decoded: list[tuple[bytes, dict]] = []

        def decode(records: Records) -> list[tuple[bytes, dict]]:
            """The records decoded so far, extended by the ones that arrived since."""
            decoded.extend((m.key, orjson.loads(m.value)) for m in records[len(decoded) :])
            return decoded

        done = until or (lambda got: len(got) >= expected)
        records = read_records(
            self.broker.bootstrap,
            topic,
            until=lambda records: done(decode(records)),
            timeout=timeout,
            settle=settle,
            isolation_level=isolation_level,
        )
        return decode(records)

    def committed(self) -> int:
        """Messages of the input topic the consumer group has committed (sum over partitions)."""

        async def go() -> int:
            # A consumer that never joins the group can still read its committed offsets.
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.broker.bootstrap,
                group_id=self.env["FRAUDSTREAM_APP_ID"],
                enable_auto_commit=False,
            )
            await consumer.start()
            try:
                total = 0
                # Not partitions_for_topic(): without a subscription it is empty on real Kafka.
                for partition in range(PARTITIONS):
                    offset = await consumer.committed(TopicPartition(self.input_topic, partition))
                    total += offset or 0
            finally:
                await consumer.stop()
            return total

        return asyncio.run(go())

    def group_members(self) -> int:
        """Members of the workers' consumer group as the broker sees it now."""

        async def go() -> int:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.broker.bootstrap)
            await admin.start()
            try:
                [response] = await admin.describe_consumer_groups([self.env["FRAUDSTREAM_APP_ID"]])
                groups = response.to_object()["groups"]
                return sum(len(group["members"]) for group in groups)
            finally:
                await admin.close()

        return asyncio.run(go())

    def close(self) -> None:
        """Stop every worker this test started."""
        for worker in self.workers:
            worker.stop()


def _pipelines(
    broker: TansuBroker | ApacheKafka, tmp_path: Path
) -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def make(*, labels_topic_exists: bool = True, **overrides: str) -> Pipeline:
        pipeline = Pipeline(broker, tmp_path, labels_topic_exists=labels_topic_exists, **overrides)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.close()


@pytest.fixture
def pipeline_factory(kafka: ApacheKafka, tmp_path: Path) -> Iterator[Callable[..., Pipeline]]:
    """Build isolated pipelines (unique topics and group) on the session's Apache Kafka."""
    yield from _pipelines(kafka, tmp_path)


@pytest.fixture
def tansu_pipeline_factory(
    broker: TansuBroker, tmp_path: Path
) -> Iterator[Callable[..., Pipeline]]:
    """The same on the embedded Tansu broker: the lane for what the demo relies on."""
    yield from _pipelines(broker, tmp_path)


@pytest.fixture
def pipeline(pipeline_factory: Callable[..., Pipeline]) -> Pipeline:
    """One isolated pipeline with default settings."""
    return pipeline_factory()
