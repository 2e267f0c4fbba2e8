"""What only a real Apache Kafka broker can show: its own console consumer reading the alert,
a broker killed mid-stream and restarted on its log directories with nothing lost, and a
topic's own size limit refusing the worker's record batches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import NewTopic

from fraudstream.kafka.topics import CREATE_TIMEOUT_MS, admin_client
from fraudstream.local.apache_kafka import ApacheKafka, KafkaUnavailable
from fraudstream.local.worker_process import WorkerProcess
from fraudstream.worker.supervision import EXIT_STATE_NOT_SAVED
from tests.conftest import PARTITIONS, Pipeline
from tests.integration.test_worker import SEED
from tests.support.environment import require
from tests.support.kafka import read_records

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

USERS = 40
PER_USER = 25


def test_kafkas_own_console_consumer_reads_the_seed_alert_as_the_readme_shows(
    kafka: ApacheKafka, pipeline_factory: Callable[..., Pipeline]
) -> None:
    pipeline = pipeline_factory()
    worker = pipeline.start_worker()
    pipeline.send_json([SEED])
    worker.wait_processed(1)
    pipeline.read(pipeline.alerts_topic, expected=1)
    done = kafka.console_consumer(
        pipeline.alerts_topic,
        "--from-beginning",
        "--max-messages",
        "1",
        "--property",
        "print.key=true",
        "--property",
        "key.separator= | ",
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    key, value = line.split(" | ", 1)
    alert = orjson.loads(value)
    assert key == "12345"
    assert (alert["userId"], alert["amount"], alert["timestamp"]) == (
        "12345",
        15000,
        "2024-12-04T15:00:00.000Z",
    )
    assert alert["reasons"][0] == {
        "type": "rule",
        "name": "amount_threshold",
        "threshold": 10000.0,
        "rule": "amount_threshold",
        "version": 1,
    }


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[ApacheKafka]:
    """A broker of this test alone: it gets killed."""
    try:
        broker = ApacheKafka(tmp_path / "kafka").start()
    except KafkaUnavailable as exc:
        require(f"Apache Kafka unavailable: {exc}")
    yield broker
    broker.stop()


def stream(users: int, per_user: int) -> list[dict[str, object]]:
    """Steady spenders, with every fifth user's last payment over the amount threshold."""
    records = []
    for i in range(per_user):
        for u in range(users):
            amount = 15_000 if i == per_user - 1 and u % 5 == 0 else 20 + (i * 7 + u) % 11
            records.append(
                {
                    "transactionId": f"u{u}-{i}",
                    "userId": f"user-{u}",
                    "amount": amount,
                    "timestamp": 1_733_320_000 + 600 * i + u,
                }
            )
    return records


def profiles(pipeline: Pipeline, expected: int = USERS) -> dict[str, bytes]:
    """The latest changelog value of every user's profile, as stored.

    Both runs send the same records in the same order, one acknowledged send at a time, so
    each lands at the same partition and offset: equal profiles are equal bytes.
    """
    topic = f"{pipeline.env['FRAUDSTREAM_APP_ID']}-user-profiles-changelog"
    latest: dict[str, bytes] = {}
    for record in read_records(pipeline.broker.bootstrap, topic, expected):
        latest[orjson.loads(record.key or b"null")] = record.value or b""
    return latest


def test_a_broker_killed_mid_stream_and_restarted_loses_nothing(
    own_kafka: ApacheKafka, tmp_path: Path
) -> None:
    records = stream(USERS, PER_USER)
    half = len(records) // 2
    expected_alerts = {r["transactionId"] for r in records if r["amount"] == 15_000}

    (tmp_path / "crashed").mkdir()
    (tmp_path / "clean").mkdir()
    # Profiles depend on each user's own events alone without the stream's raw-or-log evidence,
    # which moves between batches, and a broker crash moves where batches end.
    own_evidence = {"FRAUDSTREAM_SCALE_PRIOR_WEIGHT": "0"}
    crashed = Pipeline(own_kafka, tmp_path / "crashed", **own_evidence)
    worker = crashed.start_worker()
    crashed.send_json(records[:half])
    worker.wait_processed(half // 2, timeout=120)  # mid-work
    own_kafka.restart(crash=True)  # SIGKILL, then the same ports and log directories
    crashed.send_json(records[half:])
    stats = worker.wait_processed(len(records), timeout=240)
    alerts = crashed.read(
        crashed.alerts_topic,
        until=lambda got: len({a["transactionId"] for _, a in got}) >= len(expected_alerts),
        timeout=120,
    )
    seen = [a["transactionId"] for _, a in alerts]
    assert worker.alive(), "the worker did not ride out the broker crash"

    clean = Pipeline(own_kafka, tmp_path / "clean", **own_evidence)
    reference = clean.start_worker()
    clean.send_json(records)
    reference.wait_processed(len(records), timeout=240)
    after_crash, without_crash = profiles(crashed), profiles(clean)
    same = sum(after_crash.get(user) == value for user, value in without_crash.items())
    duplicates = len(seen) - len(set(seen))
    print(
        f"\nbroker crash: inputs={len(records)} alerts expected={len(expected_alerts)} "
        f"seen={len(set(seen))} records on topic={len(seen)} duplicates={duplicates} "
        f"redelivered={stats['redelivered']} profiles equal={same}/{len(without_crash)}"
    )
    assert set(seen) == expected_alerts
    assert same == len(without_crash) == USERS
    crashed.close()
    clean.close()


def create_topic(broker: ApacheKafka, name: str, partitions: int, **config: str) -> None:
    """A topic with per-topic settings (``max.message.bytes`` and the like)."""

    async def go() -> None:
        async with admin_client(broker.bootstrap, None, CREATE_TIMEOUT_MS) as admin:
            await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)])

    asyncio.run(go())


@pytest.mark.parametrize("batch_bytes", [None, "16384"])
def test_a_changelog_topic_whose_limit_is_under_the_batch_size_is_named_with_the_setting(
    kafka: ApacheKafka, tmp_path: Path, batch_bytes: str | None
) -> None:
    """Kafka refuses a record batch over a topic's ``max.message.bytes``: the worker stops
    before committing and says which setting to lower; at a batch size under the limit it runs.
    """
    # batches of 500 messages: ~125 new profiles per partition, ~40 KB of changelog records
    overrides = {"FRAUDSTREAM_BATCH_MAX_EVENTS": "500"}
    if batch_bytes is not None:
        overrides["FRAUDSTREAM_PRODUCER_MAX_BATCH_BYTES"] = batch_bytes
    pipeline = Pipeline(kafka, tmp_path, **overrides)
    changelog = f"{pipeline.env['FRAUDSTREAM_APP_ID']}-user-profiles-changelog"
    create_topic(kafka, changelog, PARTITIONS, **{"max.message.bytes": "20000"})
    records = stream(users=1000, per_user=1)  # ~125 new profiles per partition in one batch
    pipeline.send_json(records)  # before the worker starts: its first batches are full
    if batch_bytes is None:
        worker = WorkerProcess(pipeline.env, tmp_path / "worker.log").start()
        pipeline.workers.append(worker)  # stopped by close(), were it still running
        assert worker.process is not None
        assert worker.process.wait(timeout=120) == EXIT_STATE_NOT_SAVED
        log = worker.log_path.read_text()
        assert "MessageSizeTooLargeError" in log
        assert "set FRAUDSTREAM_PRODUCER_MAX_BATCH_BYTES under the smallest max.message" in log
    else:
        worker = pipeline.start_worker()
        worker.wait_processed(len(records), timeout=120)
        assert len(profiles(pipeline, expected=len(records))) == len(records)
    pipeline.close()
