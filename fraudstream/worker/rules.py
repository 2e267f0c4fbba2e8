"""Keeps a worker's rules equal to the rules control topic, while the worker runs.

At start the whole topic is read and applied before the first transaction is scored (the
agent waits on :attr:`RulesFollower.loaded`); an empty topic gets the seed definitions from
the settings. Then every new record is applied within one poll (~0.2 s). A record that does
not validate, is stale or names another rule than its key is logged and skipped: the last
good version keeps running. A broker error is logged and retried: the worker waits for its
rules at start, and keeps running on the last good ones while the topic is out of reach.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from aiokafka.errors import KafkaError

from fraudstream.core.rule_definitions import (
    SEED_AUTHOR,
    ChangeStatus,
    RuleChange,
    RuleDefinition,
    RuleSet,
)
from fraudstream.kafka.rules_topic import RuleRecord, RulesTopic, apply_record

log = logging.getLogger("fraudstream")

#: Seconds between two attempts to reach the rules topic after a broker error.
RETRY_SECONDS = 1.0
#: What reaching the topic can raise and a later attempt can get past: the client's errors,
#: and the admin client's timeout (a controller not ready yet) and sockets' own.
RETRIED = (KafkaError, asyncio.TimeoutError, OSError)


class RulesFollower:
    """Reads the control topic into a :class:`RuleSet`, then applies every change."""

    def __init__(
        self,
        rules: RuleSet,
        topic: RulesTopic,
        seeds: Callable[[], tuple[RuleDefinition, ...]],
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.rules = rules
        self.topic = topic
        self.seeds = seeds
        self.retry_seconds = retry_seconds
        #: Set once the topic has been read to its end (and seeded if it was empty).
        self.loaded = asyncio.Event()
        #: Records applied, by outcome (``added``, ``updated``, ``unchanged``, ``refused``).
        self.changes: Counter[str] = Counter()

    async def run(self) -> None:
        """Load the topic, then follow it until cancelled (the clients close either way)."""
        try:
            while not self.loaded.is_set():
                try:
                    await self.topic.start()
                    await self.load()
                except RETRIED as exc:
                    await self.topic.stop()
                    await self.retry(exc)
            while True:
                try:
                    records = await self.topic.poll()
                except RETRIED as exc:
                    await self.retry(exc)
                    continue
                for record in records:
                    self.apply(record)
        finally:
            await self.topic.stop()

    async def retry(self, exc: Exception) -> None:
        """Log a broker error on the rules topic, then wait before the next attempt."""
        state = "the rules in force keep running" if self.loaded.is_set() else "not scoring yet"
        log.warning(
            "rules topic %s unreachable (%s: %s), %s; retrying in %.0f s",
            self.topic.topic,
            type(exc).__name__,
            exc,
            state,
            self.retry_seconds,
        )
        await asyncio.sleep(self.retry_seconds)

    async def load(self) -> None:
        """Apply everything on the topic; publish the seeds when it holds nothing."""
        records = await self.topic.read_to_end()
        if not records:
            for definition in self.seeds():
                await self.topic.publish(definition)
            log.info("rules topic %s was empty: published the seed definitions", self.topic.topic)
            # read back rather than apply our own: when two workers seed at once, the first
            # record of each rule wins on every worker alike
            records = await self.topic.read_to_end()
        for record in records:
            self.apply(record)
        self.warn_about_ignored_settings()
        summary = ", ".join(f"{d.id} v{d.version} {d.mode.value}" for d in self.rules.definitions)
        log.info("rules loaded from %s: %s", self.topic.topic, summary or "none")
        self.loaded.set()

    def warn_about_ignored_settings(self) -> None:
        """Say so when the settings no longer match a seeded rule: the topic wins over them.

        Only rules still at their seeded version count; a rule changed on the topic since was
        changed on purpose.
        """
        for seed in self.seeds():
            current = self.rules.get(seed.id)
            if current is None or current.author != SEED_AUTHOR or current.kind == seed.kind:
                continue
            log.warning(
                "the FRAUDSTREAM_* settings of rule %s (%s) differ from its v%d on %s; the "
                "rules topic is the source of truth, so v%d keeps running: change rules with "
                "`fraudstream rules put`",
                seed.id,
                seed.reason.removeprefix("seeded from "),
                current.version,
                self.topic.topic,
                current.version,
            )

    def apply(self, record: RuleRecord) -> RuleChange:
        """Apply one record and log what it changed, or why it was refused."""
        change = apply_record(self.rules, record)
        self.changes[change.status.value] += 1
        where = f"{self.topic.topic}[{record.partition}]@{record.offset}"
        if change.status is ChangeStatus.REFUSED:
            log.warning(
                "rule definition at %s refused, the last good version keeps running: %s",
                where,
                change.describe(),
            )
        elif change.status is not ChangeStatus.UNCHANGED:
            log.info("rule definition at %s applied: %s", where, change.describe())
        return change

    def to_dict(self) -> dict[str, object]:
        """For ``/stats``: the rules in force and what the topic's records did."""
        return {
            "loaded": self.loaded.is_set(),
            "inForce": [
                {"id": d.id, "version": d.version, "mode": d.mode.value, "kind": d.kind.type}
                for d in self.rules.definitions
            ],
            "changes": dict(self.changes),
        }
