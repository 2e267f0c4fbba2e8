"""Every benchmark script starts as documented (``python benchmarks/<name>.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = [
    "run.py",
    "latency.py",
    "memory.py",
    "scaling.py",
    "influx_sink.py",
    "hst_batch.py",
    "native.py",
    "classifier.py",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_script_runs_from_anywhere_and_explains_itself(
    script: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_run_takes_each_ratio_within_a_round_and_reports_medians() -> None:
    from benchmarks.run import Figures, median_figures, paired_ratio

    # the machine doubled its speed between rounds: each round's ratio is 0.5, the ratio of
    # medians would say 0.67; a round that skipped a contender is left out of its ratios
    rounds = [
        {"a": Figures(10.0, 20.0, 100.0, 5), "b": Figures(20.0, 40.0, 90.0)},
        {"a": Figures(20.0, 40.0, 120.0, 7), "b": Figures(40.0, 80.0, 95.0)},
        {"a": Figures(30.0, 45.0, 110.0, 6)},
    ]
    assert paired_ratio(rounds, "a", "b", "rate") == 0.5
    assert paired_ratio(rounds, "a", "b", "per_cpu_second") == 0.5
    assert median_figures([r["a"] for r in rounds]) == Figures(20.0, 40.0, 120.0, 6)
