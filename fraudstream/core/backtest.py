"""Backtests: a candidate rule set and the rules in force over the same past transactions.

Each rule set runs in a :class:`Detector` of its own, exactly as a worker runs it, from
empty user histories and an unlearned model (nothing live is read or changed). A rule's
hits are the transactions it fired on: an active rule's reasons on an alert, a shadow
rule's hits beside the decision. With ground truth (the fraud transaction ids), each rule
and each set's alerts get precision (hits that were fraud) and recall (frauds hit).

>>> from datetime import datetime, timezone
>>> from fraudstream.core.detector import DetectorConfig
>>> from fraudstream.core.records import Transaction
>>> from fraudstream.core.rule_definitions import RuleSet, definition_from_json, seed_definitions
>>> config = DetectorConfig()
>>> in_force = RuleSet(seed_definitions(config, datetime(2024, 1, 1, tzinfo=timezone.utc)))
>>> candidate = RuleSet(in_force.definitions)
>>> _ = candidate.apply(definition_from_json(
...     '{"id": "amount_threshold", "version": 2, "author": "ana", "reason": "lower",'
...     ' "mode": "active", "created_at": "2024-05-01T09:00:00Z",'
...     ' "kind": {"type": "amount_threshold", "threshold": 500}}'))
>>> when = datetime(2024, 5, 2, tzinfo=timezone.utc)
>>> stream = [Transaction("t1", "u1", 800.0, when), Transaction("t2", "u2", 20.0, when)]
>>> report = backtest(config, candidate, in_force, stream, frauds={"t1"})
>>> [(t.rule_id, t.version, t.hits, t.precision, t.recall) for t in report.candidate.rules]
[('amount_threshold', 2, 1, 1.0, 1.0), ('habit_spike', 1, 0, None, 0.0), \
('unfamiliar_place', 1, 0, None, 0.0), ('user_deviation', 1, 0, None, 0.0)]
>>> report.in_force.rules[0].hits
0
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fraudstream.core.behaviour import UserHistory
from fraudstream.core.detector import Detector, DetectorConfig
from fraudstream.core.records import Reason, Transaction
from fraudstream.core.rule_definitions import RuleMode, RuleSet

#: The name of a set's alerts row (not a valid rule id, so it never clashes with one).
ALERTS = "(alerts)"


@dataclass
class Tally:
    """How often something fired, and how often on a fraud."""

    hits: int = 0
    fraud_hits: int = 0

    def count(self, fraud: bool) -> None:
        """One more hit, on a fraud or not."""
        self.hits += 1
        self.fraud_hits += fraud


@dataclass
class RuleTally(Tally):
    """One rule version's hits in a backtest; precision and recall once frauds are known."""

    rule_id: str = ""
    version: int = 0
    mode: str = RuleMode.ACTIVE.value
    #: Frauds in the backtest range (None without ground truth).
    frauds: int | None = None

    @property
    def precision(self) -> float | None:
        """Hits that were fraud; None without ground truth or without hits."""
        if self.frauds is None or not self.hits:
            return None
        return round(self.fraud_hits / self.hits, 4)

    @property
    def recall(self) -> float | None:
        """Frauds the rule hit; None without ground truth or without frauds."""
        if not self.frauds:
            return None
        return round(self.fraud_hits / self.frauds, 4)

    def to_dict(self) -> dict[str, Any]:
        """The tally as the CLI prints it in ``--json``."""
        return {
            "rule": self.rule_id,
            "version": self.version,
            "mode": self.mode,
            "hits": self.hits,
            "fraudHits": self.fraud_hits if self.frauds is not None else None,
            "precision": self.precision,
            "recall": self.recall,
        }


@dataclass
class SetReport:
    """One rule set's backtest: every rule's tally (in evaluation order) and its alerts."""

    rules: list[RuleTally]
    alerts: RuleTally

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {"rules": [t.to_dict() for t in self.rules], "alerts": self.alerts.to_dict()}


@dataclass
class BacktestReport:
    """Both rule sets over the same transactions."""

    transactions: int
    #: Frauds among them (None without ground truth).
    frauds: int | None
    candidate: SetReport
    in_force: SetReport

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "transactions": self.transactions,
            "frauds": self.frauds,
            "candidate": self.candidate.to_dict(),
            "inForce": self.in_force.to_dict(),
        }


@dataclass
class _Run:
    """One rule set's detector, histories and tallies during a backtest."""

    detector: Detector
    tallies: dict[tuple[str, int], RuleTally]
    alerts: RuleTally = field(default_factory=lambda: RuleTally(rule_id=ALERTS))
    histories: dict[str, UserHistory] = field(default_factory=dict)

    @classmethod
    def of(cls, config: DetectorConfig, rules: RuleSet) -> _Run:
        tallies = {
            (d.id, d.version): RuleTally(rule_id=d.id, version=d.version, mode=d.mode.value)
            for d in rules.definitions
            if d.mode is not RuleMode.DISABLED
        }
        return cls(Detector(config, rules=rules), tallies)

    def process(self, tx: Transaction, offset: int, fraud: bool) -> bool:
        """Decide ``tx`` and tally what fired; False for a copy of one of the user's recent
        transactions (same id), which the worker skips too."""
        history = self.histories.setdefault(tx.user_id, UserHistory())
        if history.has_recent(tx.transaction_id):
            return False
        decision = self.detector.process(tx, history, 0, offset, tx.timestamp)
        self.detector.behaviour.scale.refresh()  # as the worker after a batch (of one here)
        hit: list[Reason] = list(decision.shadow_hits)
        if decision.alert is not None:
            self.alerts.count(fraud)
            hit.extend(decision.alert.reasons)
        for reason in hit:
            rule, version = reason.details.get("rule"), reason.details.get("version")
            if isinstance(rule, str) and isinstance(version, int):  # not a model's reason
                self.tallies[rule, version].count(fraud)
        return True

    def report(self, frauds: int | None) -> SetReport:
        for tally in (*self.tallies.values(), self.alerts):
            tally.frauds = frauds
        return SetReport(list(self.tallies.values()), self.alerts)


def backtest(
    config: DetectorConfig,
    candidate: RuleSet,
    in_force: RuleSet,
    transactions: Iterable[Transaction],
    frauds: set[str] | None = None,
) -> BacktestReport:
    """Run both rule sets over ``transactions`` (in the order given) and tally their hits.

    ``frauds`` are the fraud transaction ids (ground truth); any other transaction counts as
    legit. Without it, precision and recall are None.
    """
    runs = _Run.of(config, candidate), _Run.of(config, in_force)
    seen = fraud_count = 0
    for offset, tx in enumerate(transactions):
        fraud = frauds is not None and tx.transaction_id in frauds
        decided = [run.process(tx, offset, fraud) for run in runs]
        if decided[0]:  # both runs keep every transaction's id: they skip the same copies
            seen += 1
            fraud_count += fraud
    total = fraud_count if frauds is not None else None
    return BacktestReport(seen, total, runs[0].report(total), runs[1].report(total))
