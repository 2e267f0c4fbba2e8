"""``fraudstream evaluate`` on short labeled streams: online, offline, with and without labels."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

ENV = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDSTREAM_")}


def evaluate(*args: str) -> dict:
    command = [sys.executable, "-m", "fraudstream", "evaluate", "--json", *args]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=360)
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)


def test_online_evaluation_measures_quality_and_latency_through_the_real_worker() -> None:
    report = evaluate("--count", "3000", "--users", "200", "--rate", "1000")
    run = report["runs"]["noLabels"]
    whole = run["wholeStream"]
    assert report["mode"] == "online"
    assert run["decisions"] == whole["transactions"] == 3000  # a decision for every one
    assert whole["frauds"] > 0
    assert whole["recallByScenario"]["large_amount"] == 1.0  # the rule never misses
    assert whole["latencyMs"]["count"] == whole["alerts"]
    assert whole["latencyMs"]["p50"] > 0
    assert 0.5 < run["ranking"]["overall"]["rocAuc"] <= 1.0


def test_offline_evaluation_of_the_same_stream_agrees_on_the_rule() -> None:
    report = evaluate("--count", "3000", "--users", "200", "--offline")
    whole = report["runs"]["noLabels"]["wholeStream"]
    assert report["mode"] == "offline"
    assert whole["transactions"] == 3000
    assert whole["recallByScenario"]["large_amount"] == 1.0
    assert whole["latencyMs"]["count"] == 0


def test_handbook_with_delayed_labels_runs_both_passes_and_the_classifier_learns() -> None:
    report = evaluate(
        "--generator", "handbook", "--customers", "500", "--terminals", "1000",
        "--days", "20", "--skip-days", "10", "--label-delay", "7d", "--rate", "0",
    )  # fmt: skip
    assert set(report["runs"]) == {"labels", "noLabels"}
    labelled, unlabelled = report["runs"]["labels"], report["runs"]["noLabels"]
    assert labelled["decisions"] == labelled["wholeStream"]["transactions"] > 10_000
    assert labelled["classifier"]["frauds"] > 0 and labelled["classifier"]["legit"] > 1000
    assert (unlabelled["classifier"]["frauds"], unlabelled["classifier"]["legit"]) == (0, 0)
    for run in (labelled, unlabelled):
        assert set(run["ablation"]) == {"rules", "half_space_trees", "fraud_classifier", "all"}
        assert run["ranking"]["blocks"] == 1  # days 10-16; 17-19 are no whole week


def test_a_dropped_field_leaves_the_stream_the_worker_judges() -> None:
    report = evaluate(
        "--count", "3000", "--users", "200", "--offline",
        "--drop-field", "country", "--drop-field", "merchant", "--drop-field", "country",
    )  # fmt: skip
    assert report["stream"]["droppedFields"] == ["country", "merchant"]
    whole = report["runs"]["noLabels"]["wholeStream"]
    assert whole["transactions"] == 3000
    assert "unfamiliar_place" not in whole["alertsByReason"]  # it needs both


def test_a_stream_in_cents_is_read_in_its_unit_by_the_real_worker() -> None:
    """Through the broker and the worker: the worker finds the unit, and the amount rule's line
    moves with the amounts (its alerts are those of the same stream in its own unit)."""
    own = evaluate("--count", "3000", "--users", "200", "--offline")
    report = evaluate("--count", "3000", "--users", "200", "--amount-factor", "100")
    assert report["stream"]["amountFactor"] == 100.0
    run = report["runs"]["noLabels"]
    assert run["amountUnit"] == 100.0 and run["decisions"] == 3000
    alerts = run["wholeStream"]["alertsByReason"]
    assert (
        alerts["amount_threshold"]
        == own["runs"]["noLabels"]["wholeStream"]["alertsByReason"]["amount_threshold"]
    )
    assert run["afterWarmUp"]["precision"] >= 0.9
