"""``fraudstream backtest``: a candidate rule set over past transactions, beside the rules in force.

Reads a range of the input topic (by offsets or by broker time) without a consumer group,
runs it through the core's :class:`Detector` twice (candidate and rules in force, each from
empty state), and prints the hits per rule. With a ground-truth file or the labels topic,
also precision and recall per rule. Nothing is written anywhere.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from fraudstream.cli.exits import EXIT_NOT_CONNECTED, EXIT_REFUSED
from fraudstream.cli.rules import complete_definition, fold
from fraudstream.core.backtest import BacktestReport, SetReport, backtest
from fraudstream.core.labels import Label, parse_label
from fraudstream.core.parsing import parse_transaction
from fraudstream.core.records import Rejection, Source, Transaction
from fraudstream.core.rule_definitions import (
    RuleDefinition,
    RuleSet,
    definition_from_json,
    seed_definitions,
    validation_summary,
)
from fraudstream.kafka.connection import (
    AuthFailureWatch,
    aiokafka_security,
    bootstrap_of,
    connection_failure,
)
from fraudstream.kafka.history import Span, read_span, topic_partitions
from fraudstream.kafka.rules_topic import RulesTopic
from fraudstream.settings import Settings, get_settings

#: Author and reason of candidate definitions that do not give theirs.
CANDIDATE_AUTHOR = "backtest"
CANDIDATE_REASON = "backtest candidate"
#: Label values of a ground-truth CSV that mean fraud.
FRAUD_VALUES = frozenset({"fraud", "1", "true", "yes"})


@dataclass(frozen=True)
class BacktestOptions:
    """What to run: the candidate file, the range, the ground truth."""

    rules_file: Path
    span: Span
    ground_truth: Path | None = None
    labels_topic: bool = False
    as_json: bool = False


def read_candidates(path: Path) -> list[RuleDefinition] | str:
    """The definitions in a candidate file (a JSON array, ``{"rules": [...]}``, one object, or
    JSON lines), or why it is unusable. Version, time, author and reason may be left out."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    try:
        data: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            data = [orjson.loads(line) for line in text.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            return f"{path} is neither JSON nor JSON lines: {exc}"
    if isinstance(data, dict):
        data = data.get("rules", [data])
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        return f"{path} must hold rule definitions (JSON objects)"
    definitions = []
    for i, item in enumerate(data):
        filled = complete_definition(item, None, CANDIDATE_AUTHOR, CANDIDATE_REASON)
        try:
            definitions.append(definition_from_json(orjson.dumps(filled)))
        except ValidationError as exc:
            return f"{path}: definition {i + 1} is invalid: {validation_summary(exc)}"
    return definitions


def read_ground_truth(path: Path) -> set[str] | str:
    """Fraud transaction ids from JSON-lines labels or a CSV with ``transactionId`` and ``label``
    columns (later lines win); or why the file is unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {path}: {exc}"
    verdicts: dict[str, bool] = {}
    if text.lstrip().startswith("{"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            label = parse_label(line.encode(), len(line.encode()) + 1)
            if isinstance(label, Rejection):
                return f"{path}:{number}: {label.detail}"
            verdicts[label.transaction_id] = label.is_fraud
    else:
        rows = csv.DictReader(text.splitlines())
        if not rows.fieldnames or not {"transactionId", "label"} <= set(rows.fieldnames):
            return f"{path}: a CSV needs the columns transactionId and label"
        for row in rows:
            verdicts[row["transactionId"]] = row["label"].strip().lower() in FRAUD_VALUES
    return {tx_id for tx_id, fraud in verdicts.items() if fraud}


async def run_backtest(options: BacktestOptions) -> int:
    """Read, run and print; 0 when the backtest ran."""
    candidates = read_candidates(options.rules_file)
    if isinstance(candidates, str):
        print(f"error: {candidates}", file=sys.stderr)
        return EXIT_REFUSED
    frauds: set[str] | None = None
    if options.ground_truth is not None:
        truth = read_ground_truth(options.ground_truth)
        if isinstance(truth, str):
            print(f"error: {truth}", file=sys.stderr)
            return EXIT_REFUSED
        frauds = truth
    settings = get_settings()
    kafka = settings.kafka
    try:
        bootstrap, security = bootstrap_of(kafka.broker_url), aiokafka_security(kafka)
    except (OSError, ValueError) as exc:  # a bad port, an unreadable CA file, SASL without a user
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    with AuthFailureWatch() as watch:
        try:
            in_force = await rules_in_force(settings, bootstrap, security)
            records = await read_span(bootstrap, kafka.input_topic, options.span, security)
            if options.labels_topic:
                frauds = await frauds_on_topic(settings, bootstrap, security)
        except KafkaError as exc:
            print(f"error: {connection_failure(exc, kafka, watch.failed)}", file=sys.stderr)
            return EXIT_NOT_CONNECTED
    transactions: list[Transaction] = []
    skipped = 0
    fields = settings.fields.mapping()
    for record in records:
        source = Source(kafka.input_topic, record.partition, record.offset)
        parsed = parse_transaction(
            record.value or b"", source, settings.worker.max_message_bytes, fields
        )
        if isinstance(parsed, Rejection):
            skipped += 1
        else:
            transactions.append(parsed)
    candidate = candidate_set(in_force, candidates)
    config = settings.detection.detector_config()
    report = backtest(config, candidate, in_force, transactions, frauds)
    if options.as_json:
        print(orjson.dumps({**report.to_dict(), "skipped": skipped}).decode())
    else:
        print(render(report, skipped))
    return 0


def candidate_set(in_force: RuleSet, candidates: list[RuleDefinition]) -> RuleSet:
    """The rules in force with the candidates in place of same-id rules, new ones appended."""
    merged = {d.id: d for d in in_force.definitions}
    merged.update((d.id, d) for d in candidates)
    return RuleSet(merged.values())


async def rules_in_force(settings: Settings, bootstrap: str, security: Any) -> RuleSet:
    """The rules on the rules topic (read only); the settings' seeds when it has none."""
    topic = RulesTopic(bootstrap, settings.kafka.rules_topic, security)
    if not await topic_partitions(bootstrap, topic.topic, security):
        return RuleSet(_seeds(settings))
    try:
        await topic.start()
        rules = fold(await topic.read_to_end()).rules
    finally:
        await topic.stop()
    return rules if rules.definitions else RuleSet(_seeds(settings))


async def frauds_on_topic(settings: Settings, bootstrap: str, security: Any) -> set[str]:
    """Fraud transaction ids from the whole labels topic (a transaction's last label wins)."""
    records = await read_span(bootstrap, settings.kafka.labels_topic, Span(), security)
    verdicts: dict[str, bool] = {}
    for record in records:
        label = parse_label(record.value or b"", settings.worker.max_message_bytes)
        if isinstance(label, Label):
            verdicts[label.transaction_id] = label.is_fraud
    return {tx_id for tx_id, fraud in verdicts.items() if fraud}


def render(report: BacktestReport, skipped: int) -> str:
    """The report as a table per rule set."""
    head = f"{report.transactions} transactions"
    if skipped:
        head += f" ({skipped} unreadable, skipped)"
    if report.frauds is not None:
        head += f", {report.frauds} frauds"
    return "\n".join(
        [head, "", *_table("candidate", report.candidate), "", *_table("in force", report.in_force)]
    )


def _table(title: str, report: SetReport) -> list[str]:
    lines = [
        f"{title}:",
        f"  {'rule':<24} {'vers':<5} {'mode':<8} {'hits':>7} {'prec':>7} {'rec':>7}",
    ]
    for tally in [*report.rules, report.alerts]:
        rule = tally is not report.alerts
        version, mode = (f"v{tally.version}", tally.mode) if rule else ("", "")
        lines.append(
            f"  {tally.rule_id:<24} {version:<5} {mode:<8} {tally.hits:>7} "
            f"{_ratio(tally.precision):>7} {_ratio(tally.recall):>7}"
        )
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _seeds(settings: Settings) -> tuple[RuleDefinition, ...]:
    return seed_definitions(settings.detection, datetime.now(timezone.utc))
