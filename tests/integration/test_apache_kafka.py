"""The real Apache Kafka broker of fraudstream.local.apache_kafka, as clients see it.

What Tansu cannot show: SCRAM over TLS, transactions, a crash and restart on the same log
dirs, and Kafka's own console tools. One broker for the module (a JVM start is ~4 s).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from fraudstream.local.apache_kafka import ApacheKafka, KafkaNotInstalled
from tests.support.environment import require
from tests.support.kafka import read_records

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    """One real broker for this module; missing java (or jars and mvn) skips, or fails in CI."""
    try:
        broker = ApacheKafka(tmp_path_factory.mktemp("apache-kafka")).start()
    except KafkaNotInstalled as exc:
        require(f"Apache Kafka unavailable: {exc}")
    yield broker
    broker.stop()


def topic_name(prefix: str) -> str:
    """A topic of this test alone (the broker is shared by the module)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def produce(bootstrap: str, topic: str, values: list[bytes], **config: object) -> None:
    """Send ``values`` (key ``k<i>``) and wait until the broker acknowledged all of them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **config)
    try:
        await producer.start()
        for i, value in enumerate(values):
            await producer.send_and_wait(topic, value, key=f"k{i}".encode())
    finally:
        await producer.stop()


async def consume(
    topic: str, expected: int, timeout: float = 30.0, **config: object
) -> list[bytes]:
    """Values of ``topic`` from the start, until ``expected`` arrived or ``timeout`` passed."""
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **config)
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + timeout
        while len(values) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                values += [record.value for record in records if record.value is not None]
    finally:
        await consumer.stop()
    return values


def test_plaintext_produce_and_consume_in_a_group(kafka: ApacheKafka) -> None:
    topic = topic_name("plain")
    values = [f"v{i}".encode() for i in range(10)]

    async def go() -> list[bytes]:
        await produce(kafka.bootstrap, topic, values)
        return await consume(
            topic, len(values), bootstrap_servers=kafka.bootstrap, group_id=topic_name("g")
        )

    assert asyncio.run(go()) == values


def test_sasl_ssl_with_scram_sha_512_and_the_ca_file(kafka: ApacheKafka) -> None:
    topic = topic_name("sasl")
    values = [b"over", b"tls"]

    async def go() -> list[bytes]:
        await produce(kafka.sasl_bootstrap, topic, values, **_sasl(kafka, kafka.password))
        return await consume(topic, len(values), group_id=None, **kafka.sasl_client_config())

    assert asyncio.run(go()) == values


def test_wrong_password_fails_fast_with_the_reason_in_the_log(
    kafka: ApacheKafka, caplog: pytest.LogCaptureFixture
) -> None:
    """aiokafka raises a generic KafkaConnectionError; only its log names the SASL failure."""
    caplog.set_level(logging.ERROR, logger="aiokafka")
    started = time.monotonic()
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        asyncio.run(
            produce(kafka.sasl_bootstrap, topic_name("denied"), [b"x"], **_sasl(kafka, "wrong"))
        )
    assert time.monotonic() - started < 10
    assert "SaslAuthenticationFailed" in caplog.text
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in caplog.text


def test_console_consumer_prints_key_tab_json_value(kafka: ApacheKafka) -> None:
    topic = topic_name("console")
    value = orjson.dumps({"userId": "12345", "amount": 15000})

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, value, key=b"12345")
        finally:
            await producer.stop()

    asyncio.run(go())
    done = kafka.console_consumer(
        topic, "--property", "print.key=true", "--from-beginning", "--max-messages", "1"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"12345\t{value.decode()}\n"


def test_read_committed_consumer_sees_no_aborted_record(kafka: ApacheKafka) -> None:
    topic = topic_name("txn")

    async def go() -> tuple[list[bytes], list[bytes]]:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap, transactional_id=topic_name("txid")
        )
        await producer.start()
        try:
            for value, commit in (
                (b"committed-1", True),
                (b"aborted", False),
                (b"committed-2", True),
            ):
                await producer.begin_transaction()
                await producer.send_and_wait(topic, value)
                if commit:
                    await producer.commit_transaction()
                else:
                    await producer.abort_transaction()
        finally:
            await producer.stop()
        common: dict[str, Any] = {"bootstrap_servers": kafka.bootstrap, "group_id": None}
        committed = await consume(topic, 2, isolation_level="read_committed", **common)
        everything = await consume(topic, 3, isolation_level="read_uncommitted", **common)
        return committed, everything

    committed, everything = asyncio.run(go())
    assert committed == [b"committed-1", b"committed-2"]
    # The aborted record did reach the log: only the isolation level hides it.
    assert everything == [b"committed-1", b"aborted", b"committed-2"]


def test_paused_broker_answers_nothing_until_resumed(kafka: ApacheKafka) -> None:
    topic = topic_name("paused")
    kafka.pause()
    try:
        with pytest.raises(KafkaError):
            asyncio.run(produce(kafka.bootstrap, topic, [b"x"], request_timeout_ms=2000))
    finally:
        kafka.resume()
    asyncio.run(produce(kafka.bootstrap, topic, [b"after"]))
    assert [r.value for r in read_records(kafka.bootstrap, topic, 1, settle=0)] == [b"after"]


def test_records_survive_sigkill_and_restart_on_the_same_log_dirs(kafka: ApacheKafka) -> None:
    """Last in the module: it crashes the shared broker (and brings it back)."""
    topic = topic_name("crash")
    values = [f"before-crash-{i}".encode() for i in range(20)]
    asyncio.run(produce(kafka.bootstrap, topic, values))
    old_pid = kafka.pid

    kafka.restart(crash=True)

    assert kafka.pid != old_pid
    assert [r.value for r in read_records(kafka.bootstrap, topic, len(values))] == values


def _sasl(kafka: ApacheKafka, password: str) -> dict[str, object]:
    """aiokafka SASL_SSL settings without bootstrap_servers, with the given password."""
    config = kafka.sasl_client_config()
    del config["bootstrap_servers"]
    return {**config, "sasl_plain_password": password}
