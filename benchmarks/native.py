"""The detection core compiled with mypyc (``fraudstream native build``) against pure Python.

    python benchmarks/native.py                       # 20000 transactions, 3 rounds
    python benchmarks/native.py --count 40000 --rounds 5
    python benchmarks/native.py --worker              # the whole worker on Apache Kafka

Copies the package twice into a temporary directory, compiles one copy's hot modules
(:data:`fraudstream.native.MODULES`), then feeds the same labeled stream (our scenarios, labels
7 days late) to the worker's batch handler in each copy, rounds alternated, in fresh processes.
Prints CPU microseconds per transaction (the handler, the messages' JSON encoding included),
the best round of each, and pure / compiled. With ``--worker``, each round instead runs a real
worker from each copy (no InfluxDB sink) on one Apache Kafka broker and drains the same
pre-produced stream (``--count``, default 40,000 there), as ``benchmarks/run.py`` measures it:
events/s by the clock and per second of the worker's CPU. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable as a script

from benchmarks.harness import (  # noqa: E402
    Deployment,
    drain,
    new_broker,
    produce_sync,
    transactions,
)
from fraudstream import native  # noqa: E402
from tests.support.package_copy import copy_package  # noqa: E402

CHILD = """
import itertools, sys, time
from fraudstream.cli import evaluate as ev
from fraudstream.settings import Settings
count = int(sys.argv[1])
options = ev.EvaluateOptions(offline=True, count=count, users=2000)
settings = Settings()
records = list(itertools.islice(ev.labeled_stream(options, settings), count))
labels = ev.DelayedLabels(7 * 86_400_000, 1.0, seed=1)
started = time.process_time()
ev.run_offline(records, settings, labels)
print((time.process_time() - started) / count * 1e6)
"""


def cost(root: Path, count: int) -> float:
    """CPU microseconds per transaction of one run in a fresh process on ``root``'s package."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(count)],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def handler_rounds(roots: dict[str, Path], count: int, rounds: int) -> None:
    """The batch handler of each copy in fresh processes, alternated; prints the best of each."""
    runs: dict[str, list[float]] = {name: [] for name in roots}
    for i in range(rounds):
        for name, root in roots.items():
            runs[name].append(cost(root, count))
            print(f"round {i + 1} {name:>8}: {runs[name][-1]:6.1f} us/tx", flush=True)
    best = {name: min(values) for name, values in runs.items()}
    print(
        f"best: pure {best['pure']:.1f} us/tx, compiled {best['compiled']:.1f} us/tx; "
        f"pure / compiled {best['pure'] / best['compiled']:.2f}"
    )


def worker_rounds(roots: dict[str, Path], count: int, rounds: int, work: Path) -> None:
    """A real worker from each copy on one Apache Kafka broker, alternated; prints each drain
    (events/s and per CPU-second, as ``benchmarks/run.py``) and the medians' ratios."""
    messages = transactions(count)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in roots}
    with new_broker("kafka", work) as broker:
        for i in range(rounds):
            for name, root in roots.items():
                deployment = Deployment(broker, work / f"{name}-{i}", package_root=root)
                deployment.start_workers(1)
                try:
                    produce_sync(broker.bootstrap, deployment.input_topic, messages)
                    drained = drain(deployment, count)
                finally:
                    deployment.stop()
                runs[name].append((drained.rate, drained.per_cpu_second))
                print(
                    f"round {i + 1} {name:>8}: {drained.rate:8,.0f} events/s "
                    f"{drained.per_cpu_second:8,.0f} per CPU-s",
                    flush=True,
                )
    median = {
        name: tuple(sorted(values)[len(values) // 2] for values in zip(*figures, strict=True))
        for name, figures in runs.items()
    }
    (clock_p, cpu_p), (clock_c, cpu_c) = median["pure"], median["compiled"]
    print(
        f"medians: pure {clock_p:,.0f} events/s ({cpu_p:,.0f} per CPU-s), compiled "
        f"{clock_c:,.0f} ({cpu_c:,.0f}); compiled / pure {clock_c / clock_p:.2f} by the clock, "
        f"{cpu_c / cpu_p:.2f} per CPU-second"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, help="transactions per run (20,000; 40,000 worker)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternated")
    parser.add_argument(
        "--worker", action="store_true", help="whole workers on Apache Kafka, not the handler"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fraudstream-native-bench-") as work:
        roots = {name: copy_package(Path(work) / name) for name in ("pure", "compiled")}
        print("compiling", ", ".join(native.MODULES), "...", flush=True)
        native.build(roots["compiled"] / "fraudstream")
        if args.worker:
            worker_rounds(roots, args.count or 40_000, args.rounds, Path(work))
        else:
            handler_rounds(roots, args.count or 20_000, args.rounds)


if __name__ == "__main__":
    main()
