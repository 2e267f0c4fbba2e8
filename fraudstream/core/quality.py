"""Detection quality and latency from labeled outcomes (pure: no Kafka, no I/O)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fraudstream.core.records import ReasonName

#: The models' reasons (the anomaly model's, and the classifier's once labels taught it);
#: every other reason is a rule (amount, habit spike, place, the operators' own).
MODEL_REASONS = frozenset({ReasonName.HALF_SPACE_TREES.value, ReasonName.FRAUD_CLASSIFIER.value})

#: What we hold the detector to on the default labeled stream (after warm-up).
TARGETS = {
    "precision": (">=", 0.95),
    "recall": (">=", 0.90),
    "falsePositiveRate": ("<", 0.02),
    "modelRecallUnderRuleThreshold": (">=", 0.70),
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One labeled transaction and what the detector did with it."""

    transaction_id: str
    scenario: str
    is_fraud: bool
    amount: float
    reasons: tuple[str, ...] = ()  # empty: no alert
    latency_ms: float | None = None  # send -> alert arrival, when measured
    #: The decision's ranking score and each part's score (alert line 0.5), when known.
    risk: float | None = None
    parts: dict[str, float] = field(default_factory=dict)
    day: int = 0  # event-time day of the stream (for card precision per day)
    card: str = ""  # the user (card) id

    @property
    def alerted(self) -> bool:
        """True when an alert was raised for this transaction."""
        return bool(self.reasons)


@dataclass
class QualityReport:
    """Confusion counts and the figures derived from them."""

    transactions: int = 0
    frauds: int = 0
    alerts: int = 0
    true_positives: int = 0
    false_positives: int = 0
    per_scenario: Counter[str] = field(default_factory=Counter)
    caught_per_scenario: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    caught_only_by_model: int = 0  # the model fired and no rule did
    caught_only_by_rules: int = 0  # some rule fired and the model did not
    frauds_under_rule_threshold: int = 0
    model_caught_under_rule_threshold: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Every figure, JSON-friendly."""
        legit = self.transactions - self.frauds
        figures: dict[str, Any] = {
            "transactions": self.transactions,
            "frauds": self.frauds,
            "alerts": self.alerts,
            "truePositives": self.true_positives,
            "falsePositives": self.false_positives,
            "precision": _ratio(self.true_positives, self.alerts),
            "recall": _ratio(self.true_positives, self.frauds),
            "falsePositiveRate": _ratio(self.false_positives, legit),
            "recallByScenario": {
                s: _ratio(self.caught_per_scenario[s], n)
                for s, n in sorted(self.per_scenario.items())
            },
            "alertsByReason": dict(self.reasons),
            "shareCaughtOnlyByModel": _ratio(self.caught_only_by_model, self.frauds),
            "shareCaughtOnlyByRules": _ratio(self.caught_only_by_rules, self.frauds),
            "modelRecallUnderRuleThreshold": _ratio(
                self.model_caught_under_rule_threshold, self.frauds_under_rule_threshold
            ),
            "latencyMs": latency_summary(self.latencies_ms),
        }
        precision, recall = figures["precision"], figures["recall"]
        figures["f1"] = (
            2 * precision * recall / (precision + recall)
            if precision is not None and recall is not None and precision + recall > 0
            else None
        )
        figures["targets"] = {
            name: _meets(figures[name], op, bound) for name, (op, bound) in TARGETS.items()
        }
        return figures


def assess(outcomes: list[Outcome], rule_threshold: float) -> QualityReport:
    """Count what was caught, missed and wrongly flagged."""
    report = QualityReport()
    for outcome in outcomes:
        report.transactions += 1
        report.reasons.update(outcome.reasons)
        if outcome.alerted:
            report.alerts += 1
            if outcome.latency_ms is not None:
                report.latencies_ms.append(outcome.latency_ms)
        if not outcome.is_fraud:
            report.false_positives += outcome.alerted
            continue
        report.frauds += 1
        report.per_scenario[outcome.scenario] += 1
        model_hit = any(reason in MODEL_REASONS for reason in outcome.reasons)
        rule_hit = any(reason not in MODEL_REASONS for reason in outcome.reasons)
        if outcome.alerted:
            report.true_positives += 1
            report.caught_per_scenario[outcome.scenario] += 1
            report.caught_only_by_model += model_hit and not rule_hit
            report.caught_only_by_rules += rule_hit and not model_hit
        if outcome.amount <= rule_threshold:
            report.frauds_under_rule_threshold += 1
            report.model_caught_under_rule_threshold += model_hit
    return report


def latency_summary(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 (nearest rank: the least value with at least that share at or below it) and
    the count.

    >>> latency_summary([float(v) for v in range(1, 13)])
    {'count': 12, 'p50': 6.0, 'p95': 12.0, 'p99': 12.0}
    """
    ordered = sorted(values)

    def rank(q: float) -> float | None:
        if not ordered:
            return None
        return round(
            ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered) - 1e-9) - 1))], 1
        )

    return {"count": len(ordered), "p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99)}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _meets(value: float | None, op: str, bound: float) -> bool | None:
    if value is None:
        return None
    return value >= bound if op == ">=" else value < bound


def roc_auc(scores: list[float], truth: list[bool]) -> float | None:
    """Exact ROC AUC: the chance a random fraud outranks a random legit one (ties count half).

    >>> roc_auc([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
    0.75
    """
    frauds = sum(truth)
    legit = len(truth) - frauds
    if not frauds or not legit:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum = 0.0
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average_rank = (i + j) / 2 + 1
        rank_sum += average_rank * sum(truth[order[k]] for k in range(i, j + 1))
        i = j + 1
    return round((rank_sum - frauds * (frauds + 1) / 2) / (frauds * legit), 4)


def average_precision(scores: list[float], truth: list[bool]) -> float | None:
    """Average precision as scikit-learn defines it: sum over thresholds of ΔRecall x precision.

    >>> average_precision([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
    0.8333
    """
    frauds = sum(truth)
    if not frauds:
        return None
    order = sorted(range(len(scores)), key=lambda k: -scores[k])
    total = tp = fp = 0.0
    previous_recall = 0.0
    i = 0
    while i < len(order):  # one threshold per distinct score
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            if truth[order[k]]:
                tp += 1
            else:
                fp += 1
        recall = tp / frauds
        total += (recall - previous_recall) * tp / (tp + fp)
        previous_recall = recall
        i = j + 1
    return round(total, 4)


def card_precision_at_k(
    days: list[int], cards: list[str], scores: list[float], truth: list[bool], k: int = 100
) -> float | None:
    """The handbook's card precision top-k, averaged over the days given.

    Per day, each card's score is its highest score that day (and it is a fraud card when any
    of its transactions that day is fraud); the ``k`` highest cards are "investigated" and the
    share of fraud cards among them is that day's precision. A card found compromised is left
    out of the following days, as the handbook does (its fraud is known by then).

    >>> card_precision_at_k([0, 0, 0, 1], ["a", "b", "c", "a"], [0.9, 0.2, 0.5, 0.99],
    ...                     [True, False, False, True], k=2)
    0.25
    """
    by_day: dict[int, dict[str, tuple[float, bool]]] = {}
    for day, card, score, fraud in zip(days, cards, scores, truth, strict=True):
        cards_today = by_day.setdefault(day, {})
        best, any_fraud = cards_today.get(card, (float("-inf"), False))
        cards_today[card] = (max(best, score), any_fraud or fraud)
    known: set[str] = set()
    precisions = []
    for day in sorted(by_day):
        candidates = [(s, c, f) for c, (s, f) in by_day[day].items() if c not in known]
        top = sorted(candidates, key=lambda item: -item[0])[:k]
        found = [card for _, card, fraud in top if fraud]
        precisions.append(len(found) / k)
        known.update(found)
    return round(sum(precisions) / len(precisions), 4) if precisions else None


#: The parts of a decision, as evaluate's ablation reports them (plus "all": the risk score).
DECISION_PARTS = ("rules", "half_space_trees", "fraud_classifier")


def ranking(outcomes: list[Outcome], block_days: int = 7, k: int = 100) -> dict[str, Any]:
    """ROC AUC, AP and card precision@k of the risk score, overall and per block of days.

    The handbook reports its figures on a test week; ``blockMean`` is the mean over the
    stream's whole ``block_days`` blocks, the closest online analogue.
    """
    scored = [o for o in outcomes if o.risk is not None]
    if not scored:
        return {}

    def figures(part: list[Outcome]) -> dict[str, float | None]:
        scores = [o.risk or 0.0 for o in part]
        truth = [o.is_fraud for o in part]
        return {
            "rocAuc": roc_auc(scores, truth),
            "averagePrecision": average_precision(scores, truth),
            f"cardPrecisionAt{k}": card_precision_at_k(
                [o.day for o in part], [o.card for o in part], scores, truth, k
            ),
        }

    first = min(o.day for o in scored)
    blocks: dict[int, list[Outcome]] = {}
    for outcome in scored:
        blocks.setdefault((outcome.day - first) // block_days, []).append(outcome)
    whole_blocks = [
        figures(block) for block in blocks.values() if len({o.day for o in block}) == block_days
    ]
    mean: dict[str, float | None] = {}
    for name in figures(scored[:1]):
        values = [b[name] for b in whole_blocks if b[name] is not None]
        mean[name] = round(sum(values) / len(values), 4) if values else None  # type: ignore[arg-type]
    return {"overall": figures(scored), "blockMean": mean, "blocks": len(whole_blocks)}


def ablation(outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    """What each part of the detector catches alone, from the same run (alert line 0.5).

    The parts ran together, so what one caught shaped what the others learned (an alerted
    transaction is kept out of the anomaly model's learning): an approximation of separate
    runs, and exact for what each part flagged in this one.
    """
    report: dict[str, dict[str, Any]] = {}
    for name in (*DECISION_PARTS, "all"):
        flagged: list[bool] = []
        scores: list[float] = []
        for o in outcomes:
            score = (o.risk or 0.0) if name == "all" else o.parts.get(name, 0.0)
            scores.append(score)
            flagged.append(score >= 0.5)
        frauds = sum(o.is_fraud for o in outcomes)
        alerts = sum(flagged)
        hits = sum(f and o.is_fraud for f, o in zip(flagged, outcomes, strict=True))
        per_scenario: Counter[str] = Counter()
        caught: Counter[str] = Counter()
        for f, o in zip(flagged, outcomes, strict=True):
            if o.is_fraud:
                per_scenario[o.scenario] += 1
                caught[o.scenario] += f
        report[name] = {
            "alerts": alerts,
            "precision": _ratio(hits, alerts),
            "recall": _ratio(hits, frauds),
            "averagePrecision": average_precision(scores, [o.is_fraud for o in outcomes]),
            "recallByScenario": {s: _ratio(caught[s], n) for s, n in sorted(per_scenario.items())},
        }
    return report
