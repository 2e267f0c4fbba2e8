"""Half-Space Trees cost per event: River one event at a time against the exact batch path.

    python benchmarks/hst_batch.py                     # 20000 events per variant, best of 3
    python benchmarks/hst_batch.py --events 50000 --repeats 5

Both sides score every event and learn it unless its score reaches the alert threshold, on the
worker's model (25 trees, height 5, window 1000) and its 4 features, starting from the same
trained model. "batch" is BatchHalfSpaceTrees.score_and_learn on a prepared array; "+rows"
also builds that array from the per-event feature dicts the worker has; "numpy" forces the
array path on batches that would otherwise go through River. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np
from river import anomaly

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a script

from fraudstream.core.batch_hst import SMALL_BATCH, BatchHalfSpaceTrees, FloatArray
from fraudstream.core.behaviour import HST_FEATURES as MODEL_FEATURES
from fraudstream.core.model import HSTParams

ALERT_SCORE = 0.8  # events scoring at least this are alerts, and alerts are not learned
BATCH_SIZES = (1, 2, 8, 50, 500)


def stream(n: int, seed: int) -> FloatArray:
    """Mostly small, habitual values, with an occasional outlier per feature."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 0.1, (n, len(MODEL_FEATURES)))
    outliers = rng.random(X.shape) < 0.01
    X[outliers] = rng.uniform(0.3, 1.0, int(outliers.sum()))
    return X


def trained_model(params: HSTParams, warmup: FloatArray) -> anomaly.HalfSpaceTrees:
    limits: dict[Hashable, tuple[float, float]] = {name: (0.0, 1.0) for name in MODEL_FEATURES}
    model = anomaly.HalfSpaceTrees(
        n_trees=params.n_trees,
        height=params.height,
        window_size=params.window_size,
        limits=limits,
        seed=params.seed,
    )
    for row in warmup:
        model.learn_one(dict(zip(MODEL_FEATURES, row.tolist(), strict=True)))
    return model


def river_per_event(model: anomaly.HalfSpaceTrees, rows: list[dict[str, float]]) -> float:
    start = time.perf_counter()
    for x in rows:
        if model.score_one(x) < ALERT_SCORE:
            model.learn_one(x)
    return time.perf_counter() - start


def batched(
    model: anomaly.HalfSpaceTrees,
    X: FloatArray,
    rows: list[dict[str, float]],
    size: int,
    small_batch: int = SMALL_BATCH,
) -> tuple[float, float]:
    """Seconds for the batch path on a prepared array, and when it builds the array too."""
    batch = BatchHalfSpaceTrees(model, MODEL_FEATURES, small_batch=small_batch)

    def decide(start: int, scores: FloatArray) -> np.ndarray:
        return scores < ALERT_SCORE

    def run(prepare: Callable[[int, int], FloatArray]) -> float:
        began = time.perf_counter()
        for lo in range(0, len(X), size):
            batch.score_and_learn(prepare(lo, lo + size), decide)
        return time.perf_counter() - began

    snapshot = copy.deepcopy(model)
    on_array = run(lambda lo, hi: X[lo:hi])
    batch.model = model = snapshot
    batch.refresh()
    with_rows = run(
        lambda lo, hi: np.array([[x[name] for name in MODEL_FEATURES] for x in rows[lo:hi]])
    )
    return on_array, with_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()

    params = HSTParams()
    model = trained_model(params, stream(3 * params.window_size + 300, seed=1))
    X = stream(args.events, seed=2)
    rows = [dict(zip(MODEL_FEATURES, row.tolist(), strict=True)) for row in X]

    def best(measure: Callable[[], float]) -> float:
        return min(measure() for _ in range(args.repeats)) / args.events * 1e6

    river_us = best(lambda: river_per_event(copy.deepcopy(model), rows))
    print(
        f"HST n_trees={params.n_trees} height={params.height} window={params.window_size}, "
        f"{len(MODEL_FEATURES)} features, {args.events} events, best of {args.repeats}"
    )
    print(f"{'path':<22}{'us/event':>10}{'speed-up':>10}")
    print(f"{'river per event':<22}{river_us:>10.2f}{1.0:>10.2f}")
    for size in BATCH_SIZES:
        # Below SMALL_BATCH the batch class hands events to River; "numpy" forces the array path.
        forced = [0] if size < SMALL_BATCH else []
        for small_batch in [SMALL_BATCH, *forced]:
            runs = [
                batched(copy.deepcopy(model), X, rows, size, small_batch)
                for _ in range(args.repeats)
            ]
            for label, seconds in (
                ("batch", min(r[0] for r in runs)),
                ("+rows", min(r[1] for r in runs)),
            ):
                name = f"{label} B={size}{' numpy' if small_batch == 0 else ''}"
                us = seconds / args.events * 1e6
                print(f"{name:<22}{us:>10.2f}{river_us / us:>10.2f}")
    print(f"largest score difference from River: {largest_difference(model, X, rows):.1e}")


def largest_difference(
    model: anomaly.HalfSpaceTrees, X: FloatArray, rows: list[dict[str, float]]
) -> float:
    """Exactness check on the measured stream: batch (B=500) against River's own loop."""
    reference = copy.deepcopy(model)
    expected = []
    for x in rows:
        expected.append(reference.score_one(x))
        if expected[-1] < ALERT_SCORE:
            reference.learn_one(x)
    batch = BatchHalfSpaceTrees(copy.deepcopy(model), MODEL_FEATURES)
    scores = [
        batch.score_and_learn(X[lo : lo + 500], lambda start, s: s < ALERT_SCORE).scores
        for lo in range(0, len(X), 500)
    ]
    return float(np.abs(np.concatenate(scores) - np.array(expected, dtype=float)).max())


if __name__ == "__main__":
    main()
