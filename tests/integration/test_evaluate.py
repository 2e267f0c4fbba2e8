"""``fraudstream evaluate`` on a short labeled stream, online and offline."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ENV = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDSTREAM_")}


def evaluate(*args: str) -> dict:
    command = [sys.executable, "-m", "fraudstream", "evaluate", "--count", "3000"]
    result = subprocess.run(
        [*command, "--users", "200", "--json", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)


def test_online_evaluation_measures_quality_and_latency_through_the_real_worker() -> None:
    report = evaluate("--rate", "1000")
    whole = report["wholeStream"]
    assert report["mode"] == "online"
    assert whole["transactions"] == 3000
    assert whole["frauds"] > 0
    assert whole["recallByScenario"]["large_amount"] == 1.0  # the rule never misses
    assert whole["latencyMs"]["count"] == whole["alerts"]
    assert whole["latencyMs"]["p50"] > 0


def test_offline_evaluation_of_the_same_stream_agrees_on_the_rule() -> None:
    report = evaluate("--offline")
    whole = report["wholeStream"]
    assert report["mode"] == "offline"
    assert whole["transactions"] == 3000
    assert whole["recallByScenario"]["large_amount"] == 1.0
    assert whole["latencyMs"]["count"] == 0
