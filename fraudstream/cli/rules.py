"""``fraudstream rules``: list, show, put, disable and the history of rules on the control topic.

Every command reads the whole rules topic (no consumer group) and folds it the way a worker
does, so what it prints is what the workers run. ``put`` validates a definition file before
it connects and prints the change against the version in force; whatever the topic would
refuse is refused here, with the reason and exit status 2.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from fraudstream.cli.exits import EXIT_NOT_CONNECTED, EXIT_REFUSED
from fraudstream.core.records import isoformat_utc
from fraudstream.core.rule_definitions import (
    ChangeStatus,
    RuleChange,
    RuleDefinition,
    RuleMode,
    RuleSet,
    definition_from_json,
    validation_summary,
)
from fraudstream.kafka.connection import (
    AuthFailureWatch,
    aiokafka_security,
    bootstrap_of,
    connection_failure,
)
from fraudstream.kafka.rules_topic import RuleRecord, RulesTopic, apply_record
from fraudstream.settings import get_settings


@dataclass(frozen=True)
class Folded:
    """The topic read to its end: the rules in force and what every record did."""

    rules: RuleSet
    records: list[tuple[RuleRecord, RuleChange]]


def fold(records: list[RuleRecord]) -> Folded:
    """Apply every record in topic order, as a worker does."""
    rules = RuleSet()
    return Folded(rules, [(record, apply_record(rules, record)) for record in records])


def complete_definition(
    data: dict[str, Any], current: RuleDefinition | None, author: str | None, reason: str | None
) -> dict[str, Any]:
    """Fill what a definition file may leave out: the next version, now, the author, why.

    >>> complete_definition({"id": "r"}, None, "ana", "why")["version"]
    1
    """
    filled = dict(data)
    if "version" not in filled:
        filled["version"] = 1 if current is None else current.version + 1
    filled.setdefault("created_at", isoformat_utc(datetime.now(timezone.utc)))
    if author is not None:
        filled.setdefault("author", author)
    if reason is not None:
        filled.setdefault("reason", reason)
    return filled


def describe_definition(definition: RuleDefinition) -> str:
    """One line: id, version, mode, kind, author and when."""
    return (
        f"{definition.id:<24} v{definition.version:<4} {definition.mode.value:<8} "
        f"{definition.kind.type:<16} {definition.author:<16} {isoformat_utc(definition.created_at)}"
    )


async def _with_topic(action: Callable[[RulesTopic, Folded], Awaitable[int]]) -> int:
    """Connect, read the topic to its end, run ``action``; a broker failure is exit 1."""
    settings = get_settings()
    kafka = settings.kafka
    topic = RulesTopic(bootstrap_of(kafka.broker_url), kafka.rules_topic, aiokafka_security(kafka))
    with AuthFailureWatch() as watch:
        try:
            await topic.start()
            folded = fold(await topic.read_to_end())
        except KafkaError as exc:
            await topic.stop()
            print(f"error: {connection_failure(exc, kafka, watch.failed)}", file=sys.stderr)
            return EXIT_NOT_CONNECTED
    try:
        return await action(topic, folded)
    finally:
        await topic.stop()


async def list_rules() -> int:
    """Print the rules in force, one line each."""

    async def action(topic: RulesTopic, folded: Folded) -> int:
        print(f"{'id':<24} {'vers':<5} {'mode':<8} {'kind':<16} {'author':<16} created")
        for definition in folded.rules.definitions:
            print(describe_definition(definition))
        return 0

    return await _with_topic(action)


async def show_rule(rule_id: str) -> int:
    """Print the version of one rule in force as JSON."""

    async def action(topic: RulesTopic, folded: Folded) -> int:
        definition = folded.rules.get(rule_id)
        if definition is None:
            print(f"error: no rule {rule_id!r} on {topic.topic}", file=sys.stderr)
            return EXIT_REFUSED
        text = orjson.dumps(definition.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
        print(text.decode())
        return 0

    return await _with_topic(action)


def read_definition_file(path: Path) -> dict[str, Any] | str:
    """The JSON object in ``path``, or why it is not one."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    except orjson.JSONDecodeError as exc:
        return f"{path} is not JSON: {exc}"
    if not isinstance(data, dict):
        return f"{path} must hold one JSON object (a rule definition)"
    return data


async def put_rule(
    path: Path, author: str | None, reason: str | None, dry_run: bool = False
) -> int:
    """Validate a definition file, print its change against the version in force, publish it."""
    data = read_definition_file(path)
    if isinstance(data, str):
        print(f"error: {data}", file=sys.stderr)
        return EXIT_REFUSED
    # Validate once before connecting, so a wrong file never needs the broker.
    problem = _invalid(complete_definition(data, None, author or _user(), reason))
    if problem is not None:
        print(f"error: {path} is not a valid rule definition: {problem}", file=sys.stderr)
        return EXIT_REFUSED

    async def action(topic: RulesTopic, folded: Folded) -> int:
        current = folded.rules.get(str(data.get("id")))
        filled = complete_definition(data, current, author or _user(), reason)
        definition = definition_from_json(orjson.dumps(filled))
        return await _publish(topic, folded.rules, definition, dry_run)

    return await _with_topic(action)


async def disable_rule(rule_id: str, author: str | None, reason: str) -> int:
    """Publish the next version of a rule with mode ``disabled``."""

    async def action(topic: RulesTopic, folded: Folded) -> int:
        current = folded.rules.get(rule_id)
        if current is None:
            print(f"error: no rule {rule_id!r} on {topic.topic}", file=sys.stderr)
            return EXIT_REFUSED
        definition = current.model_copy(
            update={
                "version": current.version + 1,
                "mode": RuleMode.DISABLED,
                "author": author or _user(),
                "reason": reason,
                "created_at": datetime.now(timezone.utc),
            }
        )
        return await _publish(topic, folded.rules, definition, dry_run=False)

    return await _with_topic(action)


async def rule_history(rule_id: str) -> int:
    """Print every record of one rule on the topic: version, time, author, mode and reason."""

    async def action(topic: RulesTopic, folded: Folded) -> int:
        mine = [(r, c) for r, c in folded.records if r.key_text == rule_id or c.rule_id == rule_id]
        if not mine:
            print(f"error: no rule {rule_id!r} on {topic.topic}", file=sys.stderr)
            return EXIT_REFUSED
        for record, change in mine:
            at = isoformat_utc(datetime.fromtimestamp(record.timestamp_ms / 1000, timezone.utc))
            head = f"@{record.offset} {at}"
            if change.status is ChangeStatus.REFUSED:
                print(f"{head}  refused: {change.error}")
                continue
            definition = definition_from_json(record.value or b"")
            print(
                f"{head}  v{definition.version} {definition.mode.value} by {definition.author} "
                f"({isoformat_utc(definition.created_at)}): {definition.reason}"
            )
            if change.status is ChangeStatus.ADDED:
                print(f"    kind: {orjson.dumps(definition.kind.model_dump(mode='json')).decode()}")
                continue
            for field_change in change.changes:  # what this version changed
                if field_change.path not in {"version", "created_at"}:
                    print(f"    {field_change}")
        return 0

    return await _with_topic(action)


async def _publish(
    topic: RulesTopic, rules: RuleSet, definition: RuleDefinition, dry_run: bool
) -> int:
    change = rules.apply(definition)
    if change.status is ChangeStatus.REFUSED:
        print(f"error: refused: {change.describe()}", file=sys.stderr)
        return EXIT_REFUSED
    print(change.describe())
    if change.status is ChangeStatus.UNCHANGED:
        print("nothing to publish: this version is already in force")
        return 0
    if dry_run:
        print("dry run: nothing published")
        return 0
    partition, offset = await topic.publish(definition)
    print(f"published {definition.id} v{definition.version} to {topic.topic}[{partition}]@{offset}")
    return 0


def _invalid(data: dict[str, Any]) -> str | None:
    try:
        definition_from_json(orjson.dumps(data))
    except ValidationError as exc:
        return validation_summary(exc)
    return None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown"
