"""The detection core compiled with mypyc (``fraudstream native build``) against pure Python.

    python benchmarks/native.py                       # 20000 transactions, 3 rounds
    python benchmarks/native.py --count 40000 --rounds 5

Copies the package twice into a temporary directory, compiles one copy's hot modules
(:data:`fraudstream.native.MODULES`), then feeds the same labeled stream (our scenarios, labels
7 days late) to the worker's batch handler in each copy, rounds alternated, in fresh processes.
Prints CPU microseconds per transaction (the handler, the messages' JSON encoding included),
the best round of each, and pure / compiled. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable as a script

from fraudstream import native  # noqa: E402

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


def copy_package(target: Path) -> Path:
    """fraudstream and producer, without compiled modules, under ``target``."""
    for name in ("fraudstream", "producer"):
        shutil.copytree(
            ROOT / name,
            target / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", native.MANIFEST),
        )
    return target


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="transactions per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fraudstream-native-bench-") as work:
        pure = copy_package(Path(work) / "pure")
        compiled = copy_package(Path(work) / "compiled")
        print("compiling", ", ".join(native.MODULES), "...", flush=True)
        native.build(compiled / "fraudstream")
        runs: dict[str, list[float]] = {"pure": [], "compiled": []}
        for i in range(args.rounds):
            for name, root in (("pure", pure), ("compiled", compiled)):
                runs[name].append(cost(root, args.count))
                print(f"round {i + 1} {name:>8}: {runs[name][-1]:6.1f} us/tx", flush=True)
    best = {name: min(values) for name, values in runs.items()}
    print(
        f"best: pure {best['pure']:.1f} us/tx, compiled {best['compiled']:.1f} us/tx; "
        f"pure / compiled {best['pure'] / best['compiled']:.2f}"
    )


if __name__ == "__main__":
    main()
