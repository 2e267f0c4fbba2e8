"""The supervised model: the array mirror of River's logistic pipeline is River, bit for bit."""

from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudstream.core.supervised import ClassifierParams, FraudClassifier, make_model

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
