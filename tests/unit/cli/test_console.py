"""What `fraudstream tail` and the demo print for an alert: one line a reviewer can rank by."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from fraudstream.cli.console import format_alert
from fraudstream.core.records import Alert, Reason, ReasonKind, Transaction

WHEN = datetime(2024, 12, 4, 15, tzinfo=timezone.utc)


def published(*reasons: Reason, score: float = 0.0, risk: float = 0.5) -> dict[str, object]:
    """An alert as a consumer of the alerts topic reads it."""
    tx = Transaction("tx-1", "12345", 15000.0, WHEN)
    alert = Alert("id", tx, WHEN, score, list(reasons), {}, risk)
    parsed: dict[str, object] = orjson.loads(alert.to_json())
    return parsed


def test_an_alert_line_names_the_risk_score_beside_the_trees_score() -> None:
    rule = Reason(ReasonKind.RULE, "amount_threshold", {"threshold": 10000.0})
    line = format_alert(published(rule, score=0.31, risk=0.87))
    assert "score=0.31  risk=0.87  reasons=[amount_threshold(>10000)]" in line
    assert line.startswith("ALERT 2024-12-04T15:00:00.000Z  user=12345")


def test_the_classifiers_reason_shows_its_probability_against_its_line() -> None:
    classifier = Reason(
        ReasonKind.MODEL, "fraud_classifier", {"probability": 0.97, "threshold": 0.62}
    )
    trees = Reason(ReasonKind.MODEL, "half_space_trees", {"score": 0.93, "threshold": 0.8})
    line = format_alert(published(classifier, trees, score=0.93, risk=0.99))
    assert "reasons=[fraud_classifier(0.97>=0.62), half_space_trees(0.93>=0.8)]" in line


def test_an_alert_from_an_older_worker_without_a_risk_score_still_prints() -> None:
    record = published(score=0.5)
    del record["risk"]
    assert "risk=0.00" in format_alert(record)
