"""The rules follower: seeds an empty topic, applies changes, refuses bad records, rides out
broker errors; on a stand-in topic (the real one is in tests/integration/test_rules.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError

from fraudstream.core.detector import DetectorConfig
from fraudstream.core.rule_definitions import (
    AmountThresholdKind,
    RuleDefinition,
    RuleMode,
    RuleSet,
    definition_to_json,
    seed_definitions,
)
from fraudstream.kafka.rules_topic import RuleRecord, RulesTopic
from fraudstream.worker.rules import RulesFollower

T0 = datetime(2024, 12, 1, tzinfo=timezone.utc)


class StandInTopic(RulesTopic):
    """Records in a list; ``failures`` broker errors are raised by start and poll first."""

    def __init__(
        self,
        records: list[tuple[bytes | None, bytes | None]],
        failures: int = 0,
        error: Exception | None = None,
    ) -> None:
        super().__init__("unused:9092", "rules")
        self.log = [RuleRecord(k, v, 0, i, 0) for i, (k, v) in enumerate(records)]
        self.position = 0
        self.failures = failures
        self.error = error or KafkaConnectionError("broker away")
        self.starts = 0

    def fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error

    async def start(self) -> None:
        self.starts += 1
        self.fail()
        self.position = 0

    async def read_to_end(self) -> list[RuleRecord]:
        records = self.log[self.position :]
        self.position = len(self.log)
        return records

    async def poll(self, timeout_ms: int = 0) -> list[RuleRecord]:
        self.fail()
        await asyncio.sleep(0.001)
        return await self.read_to_end()

    async def publish_raw(self, key: bytes, value: bytes) -> tuple[int, int]:
        self.log.append(RuleRecord(key, value, 0, len(self.log), 0))
        return 0, len(self.log) - 1

    async def stop(self) -> None:
        pass


def amount(threshold: float, version: int) -> RuleDefinition:
    return RuleDefinition(
        id="amount_threshold",
        version=version,
        author="ana",
        reason="test",
        mode=RuleMode.ACTIVE,
        created_at=T0,
        kind=AmountThresholdKind(threshold=threshold),
    )


def seeds() -> tuple[RuleDefinition, ...]:
    return seed_definitions(DetectorConfig(), T0)


async def running(
    follower: RulesFollower,
    until: object,
    once_loaded: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run the follower (doing ``once_loaded()`` once it has read the topic) until ``until()``
    holds (or two seconds pass), then cancel it."""
    task = asyncio.create_task(follower.run())
    if once_loaded is not None:
        await follower.loaded.wait()
        await once_loaded()
    for _ in range(2000):
        if until():  # type: ignore[operator]
            break
        await asyncio.sleep(0.001)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_an_empty_topic_gets_the_seeds_and_the_rules_are_read_back_from_it() -> None:
    topic, rules = StandInTopic([]), RuleSet()
    follower = RulesFollower(rules, topic, seeds)
    asyncio.run(running(follower, follower.loaded.is_set))
    assert [r.key for r in topic.log] == [d.id.encode() for d in seeds()]
    assert rules.definitions == seeds()
    assert follower.changes == {"added": 4}


def test_a_topic_with_rules_is_not_seeded_and_later_changes_are_applied() -> None:
    topic = StandInTopic([(b"amount_threshold", definition_to_json(amount(500.0, 1)))])
    rules = RuleSet()
    follower = RulesFollower(rules, topic, seeds)

    async def change() -> None:
        assert [d.id for d in rules.definitions] == ["amount_threshold"]
        await topic.publish(amount(200.0, 2))

    asyncio.run(running(follower, lambda: rules.definitions[0].version == 2, change))
    assert rules.definitions == (amount(200.0, 2),)


def test_bad_records_are_refused_and_counted_and_the_last_good_version_stays() -> None:
    good = definition_to_json(amount(500.0, 2))
    topic = StandInTopic(
        [
            (b"amount_threshold", good),
            (b"amount_threshold", b"{broken"),
            (b"amount_threshold", None),  # a tombstone
            (b"another-id", definition_to_json(amount(1.0, 3))),  # key is not the id
            (b"amount_threshold", definition_to_json(amount(1.0, 1))),  # stale
            (b"amount_threshold", orjson.dumps({**orjson.loads(good), "author": "x"})),  # reused
        ]
    )
    rules = RuleSet()
    follower = RulesFollower(rules, topic, seeds)
    asyncio.run(running(follower, follower.loaded.is_set))
    assert rules.definitions == (amount(500.0, 2),)
    assert follower.changes == {"added": 1, "refused": 5}


def test_broker_errors_at_start_and_while_following_are_retried() -> None:
    topic = StandInTopic([(b"amount_threshold", definition_to_json(amount(500.0, 1)))], failures=2)
    rules = RuleSet()
    follower = RulesFollower(rules, topic, seeds, retry_seconds=0.001)

    async def change() -> None:
        topic.failures = 3  # the broker goes away while the worker runs
        await topic.publish(amount(200.0, 2))

    asyncio.run(running(follower, lambda: rules.definitions[0].version == 2, change))
    assert topic.starts == 3  # two failed starts, then one that worked
    assert rules.definitions == (amount(200.0, 2),)


@pytest.mark.parametrize(
    "error",
    [asyncio.TimeoutError(), ConnectionRefusedError("refused")],
    ids=["admin client timeout (controller not ready)", "socket error"],
)
def test_timeouts_and_socket_errors_are_retried_like_broker_errors(error: Exception) -> None:
    topic = StandInTopic(
        [(b"amount_threshold", definition_to_json(amount(500.0, 1)))], failures=2, error=error
    )
    follower = RulesFollower(RuleSet(), topic, seeds, retry_seconds=0.001)
    asyncio.run(running(follower, follower.loaded.is_set))
    assert follower.loaded.is_set() and topic.starts == 3


def test_settings_that_no_longer_match_a_seeded_rule_are_reported_as_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seeded = seed_definitions(DetectorConfig(), T0)
    topic = StandInTopic([(d.id.encode(), definition_to_json(d)) for d in seeded])
    rules = RuleSet()
    lowered = lambda: seed_definitions(DetectorConfig(amount_threshold=500.0), T0)  # noqa: E731
    follower = RulesFollower(rules, topic, lowered)
    with caplog.at_level(logging.WARNING, logger="fraudstream"):
        asyncio.run(running(follower, follower.loaded.is_set))
    assert rules.definitions == seeded  # the topic wins
    [warning] = [r.getMessage() for r in caplog.records if "differ" in r.getMessage()]
    assert warning.startswith("the FRAUDSTREAM_* settings of rule amount_threshold")
    assert "FRAUDSTREAM_AMOUNT_THRESHOLD" in warning
