"""Quality figures on a hand-checked case."""

from __future__ import annotations

import pytest

from fraudstream.core.quality import Outcome, assess, latency_summary

RULE = ("amount_threshold",)
MODEL = ("half_space_trees",)
BOTH = ("amount_threshold", "half_space_trees")


def hand_checked() -> list[Outcome]:
    """10 transactions: 4 frauds (3 caught), 6 legitimate (1 false alarm)."""
    return [
        Outcome("f1", "large_amount", True, 20_000, BOTH, 10.0),
        Outcome("f2", "habit_spike", True, 900, MODEL, 20.0),
        Outcome("f3", "card_testing", True, 1, MODEL, 30.0),
        Outcome("f4", "card_testing", True, 1, ()),
        Outcome("n1", "normal", False, 50, MODEL, 40.0),
        *(Outcome(f"n{i}", "normal", False, 20, ()) for i in range(2, 7)),
    ]


def test_confusion_figures_match_the_hand_count() -> None:
    figures = assess(hand_checked(), rule_threshold=10_000).to_dict()
    assert (figures["transactions"], figures["frauds"], figures["alerts"]) == (10, 4, 4)
    assert figures["precision"] == 0.75  # 3 of 4 alerts are fraud
    assert figures["recall"] == 0.75  # 3 of 4 frauds caught
    assert figures["f1"] == pytest.approx(0.75)
    assert figures["falsePositiveRate"] == round(1 / 6, 4)
    assert figures["recallByScenario"] == {
        "card_testing": 0.5,
        "habit_spike": 1.0,
        "large_amount": 1.0,
    }
    assert figures["shareCaughtOnlyByModel"] == 0.5  # f2, f3 of 4 frauds
    assert figures["modelRecallUnderRuleThreshold"] == round(2 / 3, 4)  # f2, f3 of f2-f4
    assert figures["alertsByReason"] == {"amount_threshold": 1, "half_space_trees": 4}
    assert figures["latencyMs"] == {"count": 4, "p50": 20.0, "p95": 40.0, "p99": 40.0}
    assert figures["targets"] == {
        "precision": False,
        "recall": False,
        "falsePositiveRate": False,
        "modelRecallUnderRuleThreshold": False,
    }


def test_empty_input_divides_by_nothing() -> None:
    figures = assess([], rule_threshold=10_000).to_dict()
    assert figures["precision"] is None and figures["recall"] is None and figures["f1"] is None
    assert figures["latencyMs"]["p99"] is None


def test_latency_percentiles_use_the_nearest_rank() -> None:
    summary = latency_summary([float(v) for v in range(1, 101)])
    assert (summary["p50"], summary["p95"], summary["p99"]) == (50.0, 95.0, 99.0)
    # the least value with at least 95% at or below it: of twelve, the twelfth (11 is 92%)
    assert latency_summary([float(v) for v in range(1, 13)])["p95"] == 12.0


def test_rule_only_and_model_only_catches_are_counted_apart() -> None:
    outcomes = [
        Outcome("f1", "habit_spike", True, 900, ("habit_spike",)),
        Outcome("f2", "card_testing", True, 1, MODEL),
        Outcome("f3", "account_takeover", True, 300, ("unfamiliar_place", "half_space_trees")),
        Outcome("f4", "card_testing", True, 1, ()),
    ]
    figures = assess(outcomes, rule_threshold=10_000).to_dict()
    assert figures["shareCaughtOnlyByModel"] == 0.25  # f2
    assert figures["shareCaughtOnlyByRules"] == 0.25  # f1
    assert figures["modelRecallUnderRuleThreshold"] == 0.5  # f2, f3: rules are not the model


def test_the_classifier_is_a_model_not_a_rule() -> None:
    outcomes = [
        Outcome("f1", "habit_spike", True, 900, ("fraud_classifier",)),
        Outcome("f2", "card_testing", True, 1, ("half_space_trees", "fraud_classifier")),
        Outcome("f3", "large_amount", True, 20_000, ("amount_threshold", "fraud_classifier")),
    ]
    figures = assess(outcomes, rule_threshold=10_000).to_dict()
    assert figures["shareCaughtOnlyByModel"] == round(2 / 3, 4)  # f1, f2
    assert figures["shareCaughtOnlyByRules"] == 0.0
    assert figures["modelRecallUnderRuleThreshold"] == 1.0  # f1, f2
