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
