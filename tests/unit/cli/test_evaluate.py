"""Detection quality on the default labeled stream stays at the issue's targets (offline core)."""

from __future__ import annotations

import os

import pytest

from fraudstream.cli.evaluate import EvaluateOptions, evaluate
from fraudstream.core.quality import TARGETS


@pytest.fixture
def default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped defaults, whatever FRAUDSTREAM_ variables the shell has."""
    for name in list(os.environ):
        if name.startswith("FRAUDSTREAM_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("default_settings")
def test_default_stream_meets_every_quality_target_after_calibration() -> None:
    """A regression guard for the detector: the same stream the README's report comes from."""
    report = evaluate(EvaluateOptions(offline=True, as_json=True))
    after = report["runs"]["noLabels"]["afterWarmUp"]
    figures = {name: after[name] for name in TARGETS}
    assert all(after["targets"].values()), figures
    assert set(after["targets"]) == set(TARGETS)
