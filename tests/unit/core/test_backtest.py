"""Backtests count each rule's hits, and precision and recall, on a hand-checked stream."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fraudstream.core.backtest import backtest
from fraudstream.core.detector import DetectorConfig
from fraudstream.core.records import Transaction
from fraudstream.core.rule_definitions import (
    AmountThresholdKind,
    ExpressionKind,
    RuleDefinition,
    RuleMode,
    RuleSet,
    seed_definitions,
)

CONFIG = DetectorConfig()
T0 = datetime(2024, 12, 4, tzinfo=timezone.utc)
#: New users, days apart: only amount rules can fire (the others need a history).
STREAM = [
    Transaction(f"t{i}", f"u{i}", amount, T0 + timedelta(days=i))
    for i, amount in enumerate([800.0, 600.0, 20.0, 12_000.0, 30.0], start=1)
]
FRAUDS = {"t1", "t4", "t5"}


def definition(rule_id: str, version: int, mode: RuleMode, kind: object) -> RuleDefinition:
    return RuleDefinition.model_validate(
        {
            "id": rule_id,
            "version": version,
            "author": "ana",
            "reason": "test",
            "mode": mode,
            "created_at": T0,
            "kind": kind,
        }
    )


def rule_sets() -> tuple[RuleSet, RuleSet]:
    in_force = RuleSet(seed_definitions(CONFIG, T0))
    candidate = RuleSet(
        [
            definition("amount_threshold", 2, RuleMode.ACTIVE, AmountThresholdKind(threshold=500)),
            *in_force.definitions[1:3],
            definition("user_deviation", 2, RuleMode.DISABLED, in_force.definitions[3].kind),
            definition("big", 1, RuleMode.SHADOW, ExpressionKind(expression="amount > 700")),
        ]
    )
    return candidate, in_force


def rows(report: object) -> dict[str, tuple[object, ...]]:
    return {
        t.rule_id: (t.version, t.mode, t.hits, t.fraud_hits, t.precision, t.recall)
        for t in [*report.rules, report.alerts]  # type: ignore[attr-defined]
    }


def test_hits_precision_and_recall_per_rule_for_both_sets() -> None:
    candidate, in_force = rule_sets()
    report = backtest(CONFIG, candidate, in_force, STREAM, FRAUDS)
    assert (report.transactions, report.frauds) == (5, 3)
    assert rows(report.candidate) == {
        # 800 (fraud), 600 and 12,000 (fraud) are over 500
        "amount_threshold": (2, "active", 3, 2, 0.6667, 0.6667),
        "habit_spike": (1, "active", 0, 0, None, 0.0),
        "unfamiliar_place": (1, "active", 0, 0, None, 0.0),
        # user_deviation v2 is disabled: no row
        "big": (1, "shadow", 2, 2, 1.0, 0.6667),  # 800 and 12,000, both frauds
        "(alerts)": (0, "active", 3, 2, 0.6667, 0.6667),  # shadow hits never alert
    }
    assert rows(report.in_force) == {
        "amount_threshold": (1, "active", 1, 1, 1.0, 0.3333),  # only 12,000 is over 10,000
        "habit_spike": (1, "active", 0, 0, None, 0.0),
        "unfamiliar_place": (1, "active", 0, 0, None, 0.0),
        "user_deviation": (1, "active", 0, 0, None, 0.0),
        "(alerts)": (0, "active", 1, 1, 1.0, 0.3333),
    }


def test_without_ground_truth_there_are_hits_but_no_precision_or_recall() -> None:
    candidate, in_force = rule_sets()
    report = backtest(CONFIG, candidate, in_force, STREAM)
    assert report.frauds is None
    amount = report.candidate.rules[0]
    assert (amount.hits, amount.precision, amount.recall) == (3, None, None)
    assert report.to_dict()["candidate"]["rules"][0]["fraudHits"] is None


def test_a_backtest_does_not_change_the_rule_sets_it_is_given() -> None:
    candidate, in_force = rule_sets()
    before = (candidate.definitions, in_force.definitions)
    backtest(CONFIG, candidate, in_force, STREAM, FRAUDS)
    assert (candidate.definitions, in_force.definitions) == before


def test_a_transaction_sent_twice_is_backtested_once_as_the_worker_decides_it() -> None:
    candidate, in_force = rule_sets()
    copy = STREAM[3]  # 12,000, a fraud: sent again a minute later
    again = Transaction(
        copy.transaction_id, copy.user_id, copy.amount, T0 + timedelta(days=4, minutes=1)
    )
    report = backtest(CONFIG, candidate, in_force, [*STREAM[:4], again, STREAM[4]], FRAUDS)
    assert (report.transactions, report.frauds) == (5, 3)
    assert rows(report.in_force)["(alerts)"] == (0, "active", 1, 1, 1.0, 0.3333)
