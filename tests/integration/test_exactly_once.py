"""Exactly-once: through kill -9 cycles, each alert once and the profiles of a crash-free run."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from fraudstream.core.behaviour import UserHistory
from fraudstream.worker.supervision import EXIT_TRANSACTION_FAILED
from tests.conftest import PARTITIONS, Pipeline
from tests.integration.test_crash import RATE, TOTAL, PacedProducer, stream, stream_through_kills
from tests.support.records import AMOUNT_RULE_ONLY_ENV, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

EXACTLY_ONCE_ENV = {**AMOUNT_RULE_ONLY_ENV, "FRAUDSTREAM_PROCESSING_GUARANTEE": "exactly_once"}


def committed_profiles(pipeline: Pipeline) -> dict[bytes, bytes]:
    """Each user's last profile on the profile changelog, as a read_committed reader sees it.

    Read up to the end offsets a read_committed consumer gets (the last stable offsets), not
    until a quiet spell: a busy machine can be quiet for seconds in the middle of the topic.
    """
    topic = f"{pipeline.env['FRAUDSTREAM_APP_ID']}-user-profiles-changelog"

    async def go() -> dict[bytes, bytes]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=pipeline.broker.bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            latest: dict[bytes, bytes] = {}
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        if record.key is not None and record.value is not None:
                            latest[record.key] = record.value
            return latest
        finally:
            await consumer.stop()

    return asyncio.run(go())


def input_ends(pipeline: Pipeline) -> list[int]:
    """End offset of each input partition (records a producer retry duplicated show here)."""

    async def go() -> list[int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=pipeline.broker.bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(pipeline.input_topic, p) for p in range(PARTITIONS)]
            ends = await consumer.end_offsets(tps)
            return [ends[tp] for tp in tps]
        finally:
            await consumer.stop()

    return asyncio.run(go())


def describe(keys: set[bytes], left: dict[bytes, bytes], right: dict[bytes, bytes]) -> str:
    """Which profile fields differ, over how many users (what a failure needs to be traced)."""
    fields: Counter[str] = Counter()
    example = ""
    for key in sorted(keys):
        a, b = UserHistory.decode(left.get(key)), UserHistory.decode(right[key])
        names = [
            f.name
            for f in dataclasses.fields(UserHistory)
            if getattr(a, f.name) != getattr(b, f.name)
        ]
        fields.update(names)
        if not example:
            example = f"{key!r}: " + ", ".join(
                f"{n}={getattr(a, n)!r} vs {getattr(b, n)!r}" for n in names[:4]
            )
    return f"{dict(fields)}; e.g. {example}"


def test_kill_9_cycles_show_each_alert_once_and_leave_the_profiles_of_a_crash_free_run(
    pipeline_factory: type[Pipeline], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = stream()
    expected = {str(r["transactionId"]) for r in records if float(r["amount"]) > 10_000}  # type: ignore[arg-type]

    crashing = pipeline_factory(**EXACTLY_ONCE_ENV)
    kills, worker = stream_through_kills(crashing, records)
    wait_until(lambda: crashing.committed() == TOTAL, timeout=180, what="every offset committed")

    alerts = crashing.read(
        crashing.alerts_topic,
        timeout=60,
        until=lambda got: expected <= {a["transactionId"] for _, a in got},
        settle=3.0,
        isolation_level="read_committed",
    )
    uncommitted_view = crashing.read(crashing.alerts_topic, len(alerts), timeout=30, settle=2.0)
    copies = Counter(a["transactionId"] for _, a in alerts)
    seen = set(copies)
    duplicates = sum(copies.values()) - len(copies)

    # Its own directory, so its worker logs do not overwrite those of the run with kills.
    (tmp_path / "crash-free").mkdir()
    calm = Pipeline(crashing.broker, tmp_path / "crash-free", **EXACTLY_ONCE_ENV)
    try:
        calm.start_worker()
        PacedProducer(calm.broker.bootstrap, calm.input_topic, records, RATE * 10).run()
        wait_until(lambda: calm.committed() == TOTAL, timeout=180, what="the crash-free run")
        crash_free = committed_profiles(calm)
        calm_input_ends = input_ends(calm)
    finally:
        calm.close()
    after_kills = committed_profiles(crashing)
    differing = {key for key in crash_free if after_kills.get(key) != crash_free[key]}

    with capsys.disabled():
        print(
            f"\nexactly-once crash test: inputs={TOTAL} kills={kills} alerts "
            f"expected={len(expected)} seen={len(seen)} read_committed records={len(alerts)} "
            f"duplicates={duplicates} missing={len(expected - seen)} "
            f"(read_uncommitted records={len(uncommitted_view)}) profiles={len(after_kills)} "
            f"crash-free profiles={len(crash_free)} differing={len(differing)}"
        )
    assert expected - seen == set(), "alerts lost after kill -9"
    assert seen - expected == set(), "alerts for transactions that should not alert"
    assert duplicates == 0, "a read_committed reader saw an alert twice"
    assert after_kills.keys() == crash_free.keys()
    assert differing == set(), (
        f"profiles after kill -9 differ from the crash-free run: "
        f"{describe(differing, after_kills, crash_free)}; input end offsets "
        f"{input_ends(crashing)} vs {calm_input_ends}"
    )
    assert worker.alive()


def test_a_worker_whose_producers_are_fenced_aborts_and_exits_with_status_5(
    pipeline_factory: type[Pipeline],
) -> None:
    pipeline = pipeline_factory(**EXACTLY_ONCE_ENV)
    worker = pipeline.start_worker()
    records = stream()[:400]
    pipeline.send_json(records[:200])
    worker.wait_processed(200, timeout=60)
    # processed is not committed: a batch whose transaction is still open when the producers
    # are fenced is aborted (and left to the new owner), so fence only once all 200 are in
    wait_until(lambda: pipeline.committed() == 200, timeout=60, what="the first 200 committed")
    app_id = pipeline.env["FRAUDSTREAM_APP_ID"]

    async def fence() -> None:
        # What a new owner of the partitions does: init the same transactional ids.
        for partition in range(PARTITIONS):
            producer = AIOKafkaProducer(
                bootstrap_servers=pipeline.broker.bootstrap,
                transactional_id=f"{app_id}-tx-{partition}",
            )
            await producer.start()
            await producer.stop()

    asyncio.run(fence())
    pipeline.send_json(records[200:])
    wait_until(lambda: not worker.alive(), timeout=60, what="the fenced worker to exit")
    assert worker.stop() == EXIT_TRANSACTION_FAILED
    assert "transaction of input partition" in worker.log_tail(80)
    assert pipeline.committed() == 200, "nothing of the fenced batches was committed"


def test_two_exactly_once_workers_share_the_partitions_and_each_alert_is_committed_once(
    pipeline_factory: type[Pipeline],
) -> None:
    pipeline = pipeline_factory(**EXACTLY_ONCE_ENV)
    first = pipeline.start_worker()
    pipeline.start_worker()  # the first gives up two partitions: their producers move too
    records = stream()[:4000]
    expected = {str(r["transactionId"]) for r in records if float(r["amount"]) > 10_000}  # type: ignore[arg-type]
    pipeline.send_json(records)
    wait_until(lambda: pipeline.committed() == len(records), timeout=120, what="all committed")

    alerts = pipeline.read(
        pipeline.alerts_topic,
        timeout=30,
        until=lambda got: expected <= {a["transactionId"] for _, a in got},
        settle=2.0,
        isolation_level="read_committed",
    )
    copies = Counter(a["transactionId"] for _, a in alerts)
    assert set(copies) == expected and max(copies.values()) == 1
    assert 0 < first.stats()["transactionsIn"] < len(records), "both workers took a share"
