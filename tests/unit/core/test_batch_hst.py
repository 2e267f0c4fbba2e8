"""Batch Half-Space Trees: the same scores and the same River state as River event by event."""

from __future__ import annotations

import copy
import hashlib
import inspect
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import river
from hypothesis import given, settings
from hypothesis import strategies as st
from river import anomaly
from river.anomaly import hst
from river.tree import padded

from fraudstream.core.batch_hst import (
    RIVER_CHECKED,
    SMALL_BATCH,
    BatchHalfSpaceTrees,
    FloatArray,
)

NAMES = ("f0", "f1", "f2", "f3", "f4")
TOLERANCE = 1e-12

# Whether event i may be learned, given its index and score: the caller's rule.
Rule = Callable[[int, float], bool]


def as_dict(row: FloatArray, names: tuple[str, ...]) -> dict[str, float]:
    return dict(zip(names, row.tolist(), strict=True))


def sequential(
    model: anomaly.HalfSpaceTrees, X: FloatArray, names: tuple[str, ...], rule: Rule, offset: int
) -> tuple[list[float], list[bool]]:
    """River one event at a time: score, then learn if the rule allows it."""
    scores, learned = [], []
    for i, row in enumerate(X):
        x = as_dict(row, names)
        score = float(model.score_one(x))
        learn = rule(offset + i, score)
        if learn:
            model.learn_one(x)
        scores.append(score)
        learned.append(learn)
    return scores, learned


def chunk_decision(rule: Rule, offset: int) -> Callable[[int, FloatArray], np.ndarray]:
    """The same rule as a batch decision; checks chunks arrive in order, each event once."""
    seen = [0]

    def decide(start: int, scores: FloatArray) -> np.ndarray:
        assert start == seen[0]
        seen[0] += len(scores)
        return np.array([rule(offset + start + j, float(s)) for j, s in enumerate(scores)])

    return decide


def node_state(model: anomaly.HalfSpaceTrees) -> list[list[tuple[Any, ...]]]:
    return [
        [(type(n.l_mass), n.l_mass, type(n.r_mass), n.r_mass) for n in tree.iter_dfs()]
        for tree in model.trees
    ]


def assert_same_state(batch: anomaly.HalfSpaceTrees, river_: anomaly.HalfSpaceTrees) -> None:
    assert batch.counter == river_.counter
    assert batch._first_window == river_._first_window
    assert node_state(batch) == node_state(river_)


@st.composite
def streams(draw: st.DrawFn) -> dict[str, Any]:
    n_features = draw(st.integers(1, 5))
    n_events = draw(st.integers(0, 150))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.random((n_events, n_features))
    if draw(st.booleans()):
        # Coarse values, out-of-range values and NaN (which River sends right, as `<` is False).
        X = np.round(X * 4) / 4
        X[rng.random(X.shape) < 0.05] = -0.5
        X[rng.random(X.shape) < 0.05] = 1.5
        X[rng.random(X.shape) < 0.02] = np.nan
    cuts = sorted(draw(st.lists(st.integers(0, n_events), max_size=10)))
    return {
        "names": NAMES[:n_features],
        "X": X,
        "cuts": cuts,
        "n_trees": draw(st.integers(1, 6)),
        "height": draw(st.integers(0, 6)),
        # Mostly small windows, so pivots fall inside batches; some long ones.
        "window_size": draw(st.one_of(st.integers(1, 20), st.integers(21, 200))),
        "seed": draw(st.integers(0, 1000)),
        "learn_rate": draw(st.sampled_from([0.0, 0.3, 0.8, 1.0])),
        "score_limit": draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
        "rule_seed": draw(st.integers(0, 1000)),
        "callback": draw(st.booleans()),
        # 0: every batch vectorised; otherwise small batches go through River and the
        # arrays catch up later.
        "small_batch": draw(st.sampled_from([0, SMALL_BATCH, 8, 30])),
    }


def make_rule(stream: dict[str, Any], n: int) -> Rule:
    allowed = np.random.default_rng(stream["rule_seed"]).random(n) < stream["learn_rate"]
    limit = stream["score_limit"]
    # Alerted events (score at or above the limit) are not learned.
    return lambda i, score: bool(allowed[i]) and (limit is None or score < limit)


@settings(max_examples=300, deadline=None)
@given(streams())
def test_batches_match_river_event_by_event(stream: dict[str, Any]) -> None:
    names, X, cuts = stream["names"], stream["X"], stream["cuts"]
    params = {k: stream[k] for k in ("n_trees", "height", "window_size", "seed")}
    extra = np.random.default_rng(stream["rule_seed"]).random((30, len(names)))
    rule = make_rule(stream, len(X) + len(extra))

    reference = anomaly.HalfSpaceTrees(**params)
    expected, expected_learned = sequential(reference, X, names, rule, 0)

    model = anomaly.HalfSpaceTrees(**params)
    batch = BatchHalfSpaceTrees(model, names, small_batch=stream["small_batch"])
    scores: list[float] = []
    learned: list[bool] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(X)], strict=True):
        if stream["callback"]:
            result = batch.score_and_learn(X[lo:hi], chunk_decision(rule, lo))
        else:
            # A mask fixed up front: the rule applied to the reference scores.
            result = batch.score_and_learn(X[lo:hi], np.array(expected_learned[lo:hi], bool))
        scores.extend(result.scores.tolist())
        learned.extend(result.learned.tolist())

    assert learned == expected_learned
    assert np.allclose(scores, expected, rtol=0, atol=TOLERANCE)
    if model.trees or reference.trees:
        assert_same_state(model, reference)

    # River carries on from the batch-updated model exactly as from its own.
    assert sequential(model, extra, names, rule, len(X)) == sequential(
        reference, extra, names, rule, len(X)
    )
    if model.trees:
        assert_same_state(model, reference)


@settings(max_examples=100, deadline=None)
@given(streams())
def test_scoring_without_learning_matches_score_one_and_changes_nothing(
    stream: dict[str, Any],
) -> None:
    names, X = stream["names"], stream["X"]
    params = {k: stream[k] for k in ("n_trees", "height", "window_size", "seed")}
    model = anomaly.HalfSpaceTrees(**params)
    for row in X[: len(X) // 2]:
        model.learn_one(as_dict(row, names))
    before = pickle.dumps(model)

    scores = BatchHalfSpaceTrees(model, names).score(X)

    assert np.allclose(scores, [model.score_one(as_dict(r, names)) for r in X], rtol=0, atol=0)
    assert pickle.dumps(model) == before


def trained(window_size: int = 10, events: int = 25) -> tuple[anomaly.HalfSpaceTrees, FloatArray]:
    model = anomaly.HalfSpaceTrees(n_trees=4, height=3, window_size=window_size, seed=7)
    X = np.random.default_rng(3).random((events, 2))
    for row in X:
        model.learn_one(as_dict(row, ("f0", "f1")))
    return model, X


def test_a_value_equal_to_a_threshold_goes_right_like_river() -> None:
    model, X = trained()
    reference = copy.deepcopy(model)
    root = model.trees[0]
    column = ("f0", "f1").index(root.feature)
    X = X.copy()
    X[:, column] = root.threshold

    batch = BatchHalfSpaceTrees(model, ("f0", "f1"), small_batch=0)
    result = batch.score_and_learn(X, np.ones(len(X), bool))

    assert result.scores.tolist() == sequential(reference, X, ("f0", "f1"), lambda i, s: True, 0)[0]
    assert_same_state(model, reference)


def test_learning_directly_on_the_river_model_is_picked_up() -> None:
    model, X = trained()
    reference = copy.deepcopy(model)
    batch = BatchHalfSpaceTrees(model, ("f0", "f1"), small_batch=0)
    batch.score_and_learn(X[:3], np.ones(3, bool))
    model.learn_one(as_dict(X[3], ("f0", "f1")))  # moves the window counter

    result = batch.score_and_learn(X[4:], np.ones(len(X) - 4, bool))

    expected = sequential(reference, X, ("f0", "f1"), lambda i, s: True, 0)[0]
    assert result.scores.tolist() == expected[4:]
    assert_same_state(model, reference)


def test_small_batches_go_through_river_and_the_next_batch_catches_up() -> None:
    model, _ = trained(window_size=40, events=45)
    reference = copy.deepcopy(model)
    batch = BatchHalfSpaceTrees(model, ("f0", "f1"), small_batch=4)
    Y = np.random.default_rng(5).random((30, 2))
    scores = [*batch.score_and_learn(Y[:3], np.ones(3, bool)).scores]
    scores += [*batch.score_and_learn(Y[3:5], np.array([False, True])).scores]
    scores += [*batch.score_and_learn(Y[5:], np.ones(25, bool)).scores]

    expected = sequential(reference, Y, ("f0", "f1"), lambda i, s: i != 3, 0)[0]
    assert scores == expected
    assert_same_state(model, reference)


def test_a_restored_checkpoint_continues_where_the_batch_left_off() -> None:
    model, X = trained()
    batch = BatchHalfSpaceTrees(model, ("f0", "f1"), small_batch=0)
    batch.score_and_learn(X[:7], np.ones(7, bool))
    restored = pickle.loads(pickle.dumps(model))

    assert_same_state(restored, model)
    assert restored.score_one(as_dict(X[8], ("f0", "f1"))) == batch.score(X[8:9])[0]


def test_trees_that_split_on_an_unknown_feature_are_rejected() -> None:
    model, _ = trained()
    with pytest.raises(ValueError, match="not a feature column"):
        BatchHalfSpaceTrees(model, ("f0", "other"))


def test_a_learn_decision_of_the_wrong_length_is_rejected() -> None:
    model, X = trained()
    batch = BatchHalfSpaceTrees(model, ("f0", "f1"), small_batch=0)
    with pytest.raises(ValueError, match="shape"):
        batch.score_and_learn(X, lambda start, scores: np.ones(1, bool))


# Digests of the River code the batch mirrors: tree layout, walks, pivot, score formula.
RIVER_SOURCES = {
    "hst._walk_learn": (hst._walk_learn, "45f0fce7c8e3c141"),
    "hst._walk_score": (hst._walk_score, "dad52a7d050d2ab8"),
    "HalfSpaceTrees.__init__": (hst.HalfSpaceTrees.__init__, "290e99e5f0cdcb9e"),
    "HalfSpaceTrees.learn_one": (hst.HalfSpaceTrees.learn_one, "9c0038c971910626"),
    "HalfSpaceTrees.score_one": (hst.HalfSpaceTrees.score_one, "1bbb4b869b15a2ea"),
    "HalfSpaceTrees.size_limit": (vars(hst.HalfSpaceTrees)["size_limit"].fget, "85248e82517b80da"),
    "HalfSpaceTrees._max_score": (vars(hst.HalfSpaceTrees)["_max_score"].fget, "e8fd6ebb829f932c"),
    "padded.make_padded_tree": (padded.make_padded_tree, "08c9bdb2e3cdb6da"),
}


@pytest.mark.parametrize("name", RIVER_SOURCES)
def test_river_half_space_trees_internals_are_the_ones_the_batch_mirrors(name: str) -> None:
    code, digest = RIVER_SOURCES[name]
    found = hashlib.sha256(inspect.getsource(code).encode()).hexdigest()[:16]
    assert found == digest, (
        f"River {river.__version__} changed {name}; the batch code was checked against "
        f"{RIVER_CHECKED}: re-read river/anomaly/hst.py, update batch_hst.py and this digest"
    )


def test_river_model_and_nodes_have_the_attributes_the_batch_uses() -> None:
    assert river.__version__.startswith(RIVER_CHECKED.rsplit(".", 1)[0])
    model, _ = trained(window_size=10, events=12)
    assert inspect.signature(hst._walk_score).parameters.keys() == {
        "root",
        "x",
        "height",
        "size_limit",
    }
    assert (model.counter, model._first_window, model.size_limit) == (2, False, 1.0)
    assert model._max_score == model.n_trees * model.window_size * (2 ** (model.height + 1) - 1)
    root = model.trees[0]
    assert isinstance(root, padded.PaddedBranch)
    assert {"feature", "threshold", "l_mass", "r_mass", "children"} <= vars(root).keys()
    assert len(list(root.iter_dfs())) == 2 ** (model.height + 1) - 1
