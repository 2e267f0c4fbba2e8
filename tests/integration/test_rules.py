"""Rules as data on real workers: the control topic, live changes, refusals and shadow rules."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest

from fraudstream.core.rule_definitions import (
    AmountThresholdKind,
    RuleDefinition,
    RuleMode,
    definition_from_json,
)
from fraudstream.kafka.rules_topic import RuleRecord, RulesTopic
from fraudstream.local.worker_process import WorkerProcess
from tests.conftest import Pipeline
from tests.support.records import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

USERS = 16
T0 = 1_733_320_000
#: A value an invalid record carries; it must never reach a log.
SECRET = "s3cret-do-not-log"


def amount_rule(
    threshold: float,
    version: int,
    mode: RuleMode = RuleMode.ACTIVE,
    rule_id: str = "amount_threshold",
) -> RuleDefinition:
    return RuleDefinition(
        id=rule_id,
        version=version,
        author="ana",
        reason=f"threshold {threshold}",
        mode=mode,
        created_at=datetime.now(timezone.utc),
        kind=AmountThresholdKind(threshold=threshold),
    )


def publish(pipeline: Pipeline, *records: RuleDefinition | tuple[bytes, bytes]) -> None:
    async def go() -> None:
        async with RulesTopic(pipeline.broker.bootstrap, pipeline.rules_topic) as topic:
            for record in records:
                if isinstance(record, RuleDefinition):
                    await topic.publish(record)
                else:
                    await topic.publish_raw(*record)

    asyncio.run(go())


def topic_records(pipeline: Pipeline) -> list[RuleRecord]:
    async def go() -> list[RuleRecord]:
        async with RulesTopic(pipeline.broker.bootstrap, pipeline.rules_topic) as topic:
            return await topic.read_to_end()

    return asyncio.run(go())


def in_force(worker: WorkerProcess) -> dict[str, tuple[int, str]]:
    rules = worker.stats()["rules"]["inForce"]
    return {rule["id"]: (rule["version"], rule["mode"]) for rule in rules}


def payments(tag: str, amount: float, users: int = USERS) -> list[dict[str, Any]]:
    return [
        {"transactionId": f"{tag}-{u}", "userId": f"user-{u}", "amount": amount, "timestamp": T0}
        for u in range(users)
    ]


def test_an_empty_rules_topic_is_seeded_with_the_settings_rules(
    pipeline_factory: Any,
) -> None:
    pipeline = pipeline_factory(FRAUDSTREAM_AMOUNT_THRESHOLD="2500")
    worker = pipeline.start_worker()
    seeds = [definition_from_json(r.value or b"") for r in topic_records(pipeline)]
    ids = ["amount_threshold", "habit_spike", "unfamiliar_place", "user_deviation"]
    assert [d.id for d in seeds] == ids
    assert all((d.version, d.author, d.mode) == (1, "settings", RuleMode.ACTIVE) for d in seeds)
    assert seeds[0].kind == AmountThresholdKind(threshold=2500.0)
    assert in_force(worker) == {rule_id: (1, "active") for rule_id in ids}


def test_a_rule_change_applies_on_two_running_workers_within_a_second(
    pipeline: Pipeline,
) -> None:
    first, second = pipeline.start_worker(), pipeline.start_worker()

    def partitions(worker: WorkerProcess) -> int:
        return int(worker.get_json("/health")[1].get("assignedPartitions", 0))

    wait_until(lambda: partitions(first) > 0 and partitions(second) > 0, timeout=90, interval=0.2)
    pipeline.send_json(payments("before", 900.0))  # under the seeded 10,000: no alert
    wait_until(
        lambda: first.stats()["transactionsIn"] + second.stats()["transactionsIn"] >= USERS,
        timeout=60,
        interval=0.1,
    )

    publish(pipeline, amount_rule(500.0, version=2))
    published = time.monotonic()
    wait_until(
        lambda: all(in_force(w)["amount_threshold"] == (2, "active") for w in (first, second)),
        timeout=10,
        interval=0.02,
    )
    took = time.monotonic() - published
    print(f"rule change in force on both workers {took:.3f} s after the broker's ack")
    assert took < 1.0
    assert first.alive() and second.alive()  # no restart

    pipeline.send_json(payments("after", 900.0))
    alerts = pipeline.read(pipeline.alerts_topic, expected=USERS, timeout=60)
    assert sorted(a["transactionId"] for _, a in alerts) == sorted(
        f"after-{u}" for u in range(USERS)
    )
    for _, alert in alerts:
        [reason] = alert["reasons"]
        assert (reason["rule"], reason["version"], reason["threshold"]) == (
            "amount_threshold",
            2,
            500.0,
        )
    # both workers alerted under the new version: each holds some of the users
    assert first.stats()["alertsOut"] > 0 and second.stats()["alertsOut"] > 0


def test_refused_records_on_the_topic_are_skipped_and_the_last_good_version_keeps_running(
    pipeline: Pipeline,
) -> None:
    worker = pipeline.start_worker()
    publish(pipeline, amount_rule(500.0, version=3))
    wait_until(lambda: in_force(worker)["amount_threshold"] == (3, "active"), timeout=10)
    invalid = orjson.dumps(
        {
            "id": "amount_threshold",
            "version": 4,
            "author": "mallory",
            "reason": SECRET,
            "mode": "loud",
            "created_at": "2024-12-01T00:00:00Z",
            "kind": {"type": "amount_threshold", "threshold": SECRET},
        }
    )
    publish(
        pipeline,
        (b"amount_threshold", b"{not json " + SECRET.encode()),
        (b"amount_threshold", invalid),
        amount_rule(50.0, version=2),  # stale: older than the version in force
        (b"other-id", orjson.dumps(amount_rule(50.0, version=9).model_dump(mode="json"))),
    )
    wait_until(lambda: worker.stats()["rules"]["changes"].get("refused", 0) >= 4, timeout=10)
    assert in_force(worker)["amount_threshold"] == (3, "active")

    pipeline.send_json(payments("probe", 200.0, users=1) + payments("big", 900.0, users=1))
    [(_, alert)] = pipeline.read(pipeline.alerts_topic, expected=1, settle=1.0)
    assert alert["transactionId"] == "big-0"
    assert alert["reasons"][0]["version"] == 3
    log = worker.log_path.read_text(errors="replace")
    assert log.count("refused, the last good version keeps running") >= 4
    assert SECRET not in log


def test_a_shadow_rule_never_alerts_and_its_hits_go_to_the_shadow_topic(
    pipeline: Pipeline,
) -> None:
    worker = pipeline.start_worker()
    publish(pipeline, amount_rule(500.0, version=1, mode=RuleMode.SHADOW, rule_id="big-spend"))
    wait_until(lambda: in_force(worker).get("big-spend") == (1, "shadow"), timeout=10)

    pipeline.send_json(payments("p", 900.0, users=4))
    hits = pipeline.read(pipeline.shadow_topic, expected=4, timeout=60)
    assert sorted((key, hit["transactionId"]) for key, hit in hits) == [
        (f"user-{u}".encode(), f"p-{u}") for u in range(4)
    ]
    assert all((h["rule"], h["version"], h["alerted"]) == ("big-spend", 1, False) for _, h in hits)
    assert pipeline.read(pipeline.alerts_topic, expected=0, settle=1.0) == []
    stats = worker.stats()
    assert stats["shadowHitsByRule"] == {"big-spend": 4} and stats["alertsOut"] == 0
