"""The supervised model: the array mirror of River's logistic pipeline is River, bit for bit;
the alert line and the parts' trust read labels that cover only some of the frauds."""

from __future__ import annotations

import math
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.core.supervised import (
    CalibrationParams,
    ClassifierParams,
    FraudClassifier,
    PartTrust,
    ThresholdFromLabels,
    TrustParams,
    make_model,
)

PARAMS = ClassifierParams(min_frauds=1, min_legit=1)


def stream(seed: int, features: int, length: int) -> list[tuple[dict[str, float], bool]]:
    """Features on scales from 1e-3 to 1e4, some constant (no spread), frauds rare."""
    rng = random.Random(seed)
    scales = [10.0 ** rng.randint(-3, 4) for _ in range(features)]
    constant = [rng.random() < 0.2 for _ in range(features)]
    rows = []
    for _ in range(length):
        x = {
            f"f{i}": (scale if fixed else rng.gauss(0.0, scale))
            for i, (scale, fixed) in enumerate(zip(scales, constant, strict=True))
        }
        rows.append((x, rng.random() < 0.1))
    return rows


def river_state(model: object) -> tuple[object, ...]:
    scaler, lr = model["StandardScaler"], model["LogisticRegression"]  # type: ignore[index]
    return (
        dict(scaler.counts),
        dict(scaler.means),
        dict(scaler.vars),
        {k: lr._weights[k] for k in lr._weights},
        lr.intercept,
        lr.optimizer.n_iterations,
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 90), st.integers(0, 300))
def test_every_probability_and_learned_value_is_rivers(seed: int, features: int, n: int) -> None:
    fast, river = FraudClassifier(PARAMS), make_model(PARAMS)
    for x, fraud in stream(seed, features, n):
        assert fast.predict_proba_one(x) == river.predict_proba_one(x).get(True, 0.0)
        fast.learn_one(x, fraud)
        river.learn_one(x, fraud)
    kept = pickle.loads(pickle.dumps(fast))  # a checkpoint: River's pipeline, brought up to date
    assert river_state(kept.model) == river_state(river)


def test_a_restored_classifier_goes_on_exactly_as_river() -> None:
    rows = stream(7, 90, 600)
    fast, river = FraudClassifier(PARAMS), make_model(PARAMS)
    for x, fraud in rows[:300]:
        fast.learn_one(x, fraud)
        river.learn_one(x, fraud)
    fast = pickle.loads(pickle.dumps(fast))
    for x, fraud in rows[300:]:
        assert fast.predict_proba_one(x) == river.predict_proba_one(x).get(True, 0.0)
        fast.learn_one(x, fraud)
        river.learn_one(x, fraud)
    assert fast.frauds + fast.legit == 600


def test_other_features_hand_back_to_river_in_sync() -> None:
    fast, river = FraudClassifier(PARAMS), make_model(PARAMS)
    for x, fraud in stream(3, 5, 50):
        fast.learn_one(x, fraud)
        river.learn_one(x, fraud)
    fewer = {"f0": 1.0, "f2": -3.0}
    assert fast.predict_proba_one(fewer) == river.predict_proba_one(fewer).get(True, 0.0)


@pytest.mark.parametrize("kind", ["logistic_undersampled", "forest"])
def test_other_kinds_are_rivers_own(kind: str) -> None:
    model = FraudClassifier(ClassifierParams(kind=kind, min_frauds=1, min_legit=1))
    for x, fraud in stream(1, 3, 60):
        model.learn_one(x, fraud)
    assert model._mirror is None and 0.0 <= model.predict_proba_one(stream(2, 3, 1)[0][0]) <= 1.0


def half_reported(count: int) -> list[tuple[float, bool]]:
    """High probabilities, every one a fraud, but only every other fraud ever reported (what
    the labels show is half of them fraud), then as many legit ones from 0.9 down."""
    frauds = [(0.99 - i * 1e-4, i % 2 == 0) for i in range(count)]
    return frauds + [(0.9 - j * 1e-3, False) for j in range(count)]


@pytest.mark.parametrize(
    ("coverage", "fallback", "line", "certified"),
    [(1.0, 0.5, 0.9801, False), (1.0, 0.9, 1.0, False), (0.5, 0.5, 0.89, True)],
)
def test_the_alert_line_asks_labels_for_the_precision_their_coverage_can_show(
    coverage: float, fallback: float, line: float, certified: bool
) -> None:
    """Labels for half the frauds can never show 0.9: asked for it, the line settles, not
    certified, for the 100th probability, the lowest where half the alerts were fraud (the bar
    the parts are held to), or stays at 1 when asked for 0.9 there too; told that half are
    reported, 0.45 is what 0.9 looks like, and the line goes down to the 111th probability,
    where 50 reported frauds are 0.45 of the alerts."""
    params = CalibrationParams(
        min_hits=5, refresh=200, coverage=coverage, fallback_precision=fallback
    )
    threshold = ThresholdFromLabels(params)
    for probability, fraud in half_reported(100):
        threshold.observe(probability, fraud, event_time=0.0)
    assert round(threshold.value, 6) == line and threshold.certified is certified


def test_a_classifier_whose_best_alerts_are_mostly_false_does_not_alert_alone() -> None:
    """Ten frauds among the top 30 probabilities: a third, under the parts' bar of a half at
    every depth ten frauds reach, so no line at all."""
    threshold = ThresholdFromLabels(CalibrationParams(min_hits=10, refresh=300))
    for k in range(300):
        threshold.observe(1.0 - k / 1000, fraud=k < 30 and k % 3 == 0, event_time=0.0)
    assert threshold.value == 1.0 and not threshold.certified
    assert round(threshold.reference, 4) == round(10 / 28, 4)


def test_the_reference_follows_the_labels_over_event_time_not_each_recomputation() -> None:
    """An hour after a best of 1.0, a best of 0.75 hardly moves the reference; eight days
    after, a best of 2/3 moves it 1 - e^(-8/7) of the way: one noisy recomputation does not
    swing the parts' judgement, a week of labels does."""
    day = 86400.0
    threshold = ThresholdFromLabels(CalibrationParams(min_hits=2, refresh=4))
    for fraud in (True, True, True, True):
        threshold.observe(0.9, fraud, event_time=0.0)
    assert threshold.reference == 1.0
    for probability, fraud in [(0.95, True), (0.94, False), (0.93, True), (0.92, False)]:
        threshold.observe(probability, fraud, event_time=3600.0)
    before = threshold.reference
    assert round(before, 4) == round(1 - 0.25 * (1 - math.exp(-1 / (7 * 24))), 4), "an hour"
    for probability, fraud in [(0.99, True), (0.98, False), (0.97, True), (0.96, False)]:
        threshold.observe(probability, fraud, event_time=3600.0 + 8 * day)  # the rest aged out
    moved = before + (2 / 3 - before) * (1 - math.exp(-8 / 7))
    assert round(threshold.reference, 6) == round(moved, 6)


def test_the_reference_is_the_best_precision_labels_show_on_the_classifiers_top() -> None:
    """Every other fraud reported: 5 reported frauds are first reached at the 9th probability,
    the best ratio at least ``min_hits`` deep, whatever the coverage setting says."""
    threshold = ThresholdFromLabels(CalibrationParams(min_hits=5, refresh=200))
    assert threshold.reference == 0.0, "no labels: nothing to judge a part against"
    for probability, fraud in half_reported(100):
        threshold.observe(probability, fraud, event_time=0.0)
    assert round(threshold.reference, 4) == round(5 / 9, 4) and not threshold.certified


@pytest.mark.parametrize(("coverage", "trusted"), [(1.0, False), (0.5, True)])
def test_a_part_is_trusted_at_the_precision_labels_of_its_coverage_can_show(
    coverage: float, trusted: bool
) -> None:
    trust = PartTrust(TrustParams(min_alerts=20, coverage=coverage))
    for i in range(40):  # 16 of its 40 alerts reported as fraud: 0.4, true precision ~0.8
        trust.observe(i % 5 < 2, event_time=float(i))
    assert round(trust.precision, 1) == 0.4 and trust.trusted is trusted


@pytest.mark.parametrize(("reference", "trusted"), [(1.0, False), (0.5, True), (0.0, True)])
def test_a_part_is_judged_against_the_precision_labels_show_for_the_classifier(
    reference: float, trusted: bool
) -> None:
    """16 of its 40 alerts reported as fraud: 0.4. Under half of a classifier that labels show
    at 1.0, it stops; against half-reported labels (the classifier shows 0.5) it keeps alerting;
    with no reference yet, the labels do not judge it."""
    trust = PartTrust(TrustParams(min_alerts=20))
    for i in range(40):
        trust.observe(i % 5 < 2, event_time=float(i))
    assert round(trust.precision, 1) == 0.4 and trust.trusted_against(reference) is trusted


def test_a_late_fraud_label_turns_the_legit_it_corrects_into_a_fraud_not_a_second_alert() -> None:
    """Chargebacks after the horizon: every fraud first matured as legit, then its label came.
    Counted twice, the top 100 probabilities held 50 frauds in 150 resolutions and the line
    never certified; corrected in place, they are all fraud."""
    day = 86400.0
    threshold = ThresholdFromLabels(CalibrationParams(min_hits=5, refresh=50))
    trust = PartTrust(TrustParams(min_alerts=20))
    top = [(0.99 - i * 1e-3, float(i)) for i in range(50)]
    for probability, moment in top:  # matured unlabeled: legit for now
        threshold.observe(probability, False, event_time=moment)
        trust.observe(False, event_time=moment)
    for j in range(50):  # ordinary traffic
        threshold.observe(0.1, False, event_time=day + j)
    assert threshold.value == 1.0 and not threshold.certified and trust.precision == 0.0
    for probability, moment in top:  # the chargebacks, weeks later
        threshold.observe(probability, True, event_time=moment, correction=True)
        trust.observe(True, event_time=moment, correction=True)
    for j in range(50):  # up to the next recomputation
        threshold.observe(0.1, False, event_time=2 * day + j)
    assert threshold.certified and threshold.value == threshold.params.floor  # all 50 fraud
    assert trust.resolved == 50 and trust.precision == pytest.approx(1.0)


def test_the_line_is_judged_up_to_the_newest_matured_transaction_not_the_newest_label() -> None:
    """Labels that come before the maturity horizon resolve frauds days before their legit
    neighbours mature: counted at once, the newest days held frauds and hardly any legit."""
    day = 86400.0
    threshold = ThresholdFromLabels(CalibrationParams(min_hits=5, refresh=100))
    for j in range(60):  # matured: the newest settled transactions, at probability 0.95, legit
        threshold.observe(0.95, False, event_time=j * 60.0, matured=True)
    for j in range(40):  # frauds labelled quickly, made five days after the newest settled one
        threshold.observe(0.95, True, event_time=5 * day + j * 60.0, delay=day)
    assert threshold.value == 1.0 and not threshold.certified  # 0 of 60 settled ones fraud
    assert threshold.settled == 59 * 60.0


def test_labels_still_to_come_at_a_transactions_age_count_for_its_labelled_frauds() -> None:
    """Chargebacks 1.5-10.5 days late: at 5 days old 4 frauds in 10 are labelled, so the
    classifier's best alerts show 0.4 of the precision they have; counted for the labels
    still to come (less one standard error), they reach the line's target."""
    day = 86400.0

    def judged(delays: list[float], frauds: int) -> ThresholdFromLabels:
        refresh = len(delays) + frauds + 100  # recomputed once, when all are in
        params = CalibrationParams(min_hits=5, refresh=refresh, floor=0.0, horizon=3600.0)
        threshold = ThresholdFromLabels(params)
        for i, delay in enumerate(delays):  # older frauds whose labels come now, at day 5
            threshold.observe(0.2, True, event_time=5 * day - delay - i, delay=delay)
        for i in range(frauds):  # made at day 0: every one a fraud, 4 in 10 labelled by now
            labelled = i % 10 < 4  # the others matured unlabelled
            threshold.observe(0.99 - i * 1e-5, labelled, event_time=float(i), matured=not labelled)
        for j in range(100):  # ordinary traffic, matured too
            moment = frauds + float(j)
            threshold.observe(0.5 - j * 1e-3, False, event_time=moment, matured=True)
        return threshold

    spread = [(1.5 + i % 10) * day for i in range(100)]
    # 300 frauds count 300 +- 21: the line goes down to the 9th legit ((300 - 21) / 309 = 0.9)
    many = judged(spread, 300)
    assert many.certified and many.value == pytest.approx(0.492)
    assert many.reference < 0.6  # what the labels show, unweighted: for the parts' trust
    # every label 4 days late: complete at 5 days, and 4 in 10 fraud is what the labels say
    assert not judged([4 * day] * 100, 300).certified


def test_the_line_a_checkpoint_restores_says_whether_labels_set_it() -> None:
    threshold = ThresholdFromLabels(CalibrationParams(min_hits=5, refresh=200, coverage=0.5))
    for probability, fraud in half_reported(100):
        threshold.observe(probability, fraud, event_time=0.0)
    restored = pickle.loads(pickle.dumps(threshold))
    assert restored.certified and restored.value == threshold.value
    assert restored.reference == threshold.reference > 0
    fresh = ThresholdFromLabels(CalibrationParams())
    assert not fresh.certified and fresh.reference == 0.0, "before any labels: not set"
