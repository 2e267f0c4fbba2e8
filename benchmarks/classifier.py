"""The supervised model as River computes it against its exact array mirror, side by side.

    python benchmarks/classifier.py                   # handbook, 1,000 customers, 40 days
    python benchmarks/classifier.py --customers 500 --days 30 --rounds 5
    python benchmarks/classifier.py --kinds           # also every FRAUDSTREAM_CLASSIFIER_KIND

Runs the handbook stream with 7-day labels once through the worker's batch handler in this
process and records what the classifier was asked: every transaction it scored and every
label (or maturity) it learned, in order. Then replays that exact sequence, rounds alternated,
through River's own pipeline (:func:`fraudstream.core.supervised.make_model`) and through
:class:`fraudstream.core.supervised.FraudClassifier` (the mirror), checks that every
probability is the same, and prints microseconds per call of each and River / mirror. With
``--kinds``, River's own model of every ``FRAUDSTREAM_CLASSIFIER_KIND`` on the same calls too.
Figures, not assertions (the equality check is the property test's, here on a real stream).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import get_args

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable as a script

from fraudstream.cli import evaluate as ev  # noqa: E402
from fraudstream.core.detector import CLASSIFIER_FEATURES  # noqa: E402
from fraudstream.core.supervised import (  # noqa: E402
    ClassifierKind,
    ClassifierParams,
    FraudClassifier,
    make_model,
)
from fraudstream.settings import Settings  # noqa: E402
from fraudstream.worker.collector import worker_collector  # noqa: E402

#: One call the classifier got: ("learn", values, fraud) or ("predict", values, None).
Call = tuple[str, tuple[float, ...], bool | None]


def record_calls(customers: int, days: int) -> list[Call]:
    """What the classifier is asked over a labelled handbook run, in order."""
    calls: list[Call] = []
    learn, predict = FraudClassifier.learn_values, FraudClassifier.predict_proba_values

    def learning(self: FraudClassifier, names: tuple[str, ...], values: tuple[float, ...],
                 fraud: bool) -> None:  # fmt: skip
        calls.append(("learn", tuple(values), bool(fraud)))
        learn(self, names, values, fraud)

    def predicting(self: FraudClassifier, names: tuple[str, ...],
                   values: tuple[float, ...]) -> float:  # fmt: skip
        calls.append(("predict", tuple(values), None))
        return predict(self, names, values)

    settings = Settings()
    options = ev.EvaluateOptions(
        offline=True, generator="handbook", customers=customers, terminals=2 * customers, days=days
    )
    labels = ev.DelayedLabels(7 * 86_400_000, 1.0, seed=1)
    FraudClassifier.learn_values = learning  # type: ignore[method-assign]
    FraudClassifier.predict_proba_values = predicting  # type: ignore[method-assign]
    try:
        with worker_collector(settings.worker.gc_young_threshold):
            ev.run_offline(ev.labeled_stream(options, settings), settings, labels)
    finally:
        FraudClassifier.learn_values = learn  # type: ignore[method-assign]
        FraudClassifier.predict_proba_values = predict  # type: ignore[method-assign]
    return calls


def river_cost(calls: list[Call], kind: ClassifierKind) -> float:
    """Microseconds per call of River's own ``kind`` model on ``calls`` (no mirror)."""
    seconds, _ = replay_river(calls, ClassifierParams(kind=kind))
    return seconds / len(calls) * 1e6


def replay_river(calls: list[Call], params: ClassifierParams) -> tuple[float, list[float]]:
    """Seconds of CPU, and the probabilities, of River's own pipeline on ``calls``."""
    model = make_model(params)
    names = CLASSIFIER_FEATURES
    out = []
    started = time.process_time()
    for kind, values, fraud in calls:
        x = dict(zip(names, values, strict=True))
        if kind == "learn":
            model.learn_one(x, fraud)
        else:
            out.append(model.predict_proba_one(x).get(True, 0.0))
    return time.process_time() - started, out


def replay_mirror(calls: list[Call], params: ClassifierParams) -> tuple[float, list[float]]:
    """The same through :class:`FraudClassifier`, as the detector calls it."""
    model = FraudClassifier(params)
    names = CLASSIFIER_FEATURES
    out = []
    started = time.process_time()
    for kind, values, fraud in calls:
        if kind == "learn":
            model.learn_values(names, values, bool(fraud))
        else:
            out.append(model.predict_proba_values(names, values))
    return time.process_time() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--kinds",
        action="store_true",
        help="also time every FRAUDSTREAM_CLASSIFIER_KIND on the same calls (River's own)",
    )
    args = parser.parse_args()
    calls = record_calls(args.customers, args.days)
    learns = sum(1 for kind, _, _ in calls if kind == "learn")
    predicts = len(calls) - learns
    print(f"recorded {learns:,} learns and {predicts:,} predictions ({len(CLASSIFIER_FEATURES)} "
          "features)", flush=True)  # fmt: skip
    params = ClassifierParams()  # the settings' defaults
    young_threshold = Settings().worker.gc_young_threshold
    best = {"river": float("inf"), "mirror": float("inf")}
    with worker_collector(young_threshold):
        for round_ in range(1, args.rounds + 1):
            river_s, river_p = replay_river(calls, params)
            mirror_s, mirror_p = replay_mirror(calls, params)
            same = river_p == mirror_p
            best["river"] = min(best["river"], river_s)
            best["mirror"] = min(best["mirror"], mirror_s)
            print(
                f"round {round_}: River {river_s / len(calls) * 1e6:6.1f} us per call, mirror "
                f"{mirror_s / len(calls) * 1e6:6.1f}; probabilities identical: {same}",
                flush=True,
            )
    print(
        f"best rounds: River {best['river']:.2f} s, mirror {best['mirror']:.2f} s for "
        f"{len(calls):,} calls; River / mirror {best['river'] / best['mirror']:.2f}"
    )
    if args.kinds:
        with worker_collector(young_threshold):
            for kind in get_args(ClassifierKind):
                print(f"River's {kind}: {river_cost(calls, kind):8.1f} us per call", flush=True)


if __name__ == "__main__":
    main()
