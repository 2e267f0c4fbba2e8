"""``fraudstream rules`` against a running worker: put, list, show, disable, history."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from fraudstream.local.worker_process import WorkerProcess
from tests.conftest import Pipeline
from tests.support.records import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def rules(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudstream", "rules", *args],
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def in_force(worker: WorkerProcess, rule_id: str) -> tuple[int, str] | None:
    for rule in worker.stats()["rules"]["inForce"]:
        if rule["id"] == rule_id:
            return rule["version"], rule["mode"]
    return None


def write(path: Path, **definition: object) -> Path:
    path.write_bytes(orjson.dumps(definition))
    return path


def test_put_prints_the_change_and_the_running_worker_applies_it(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    worker = pipeline.start_worker()
    lowered = write(
        tmp_path / "amount.json",
        id="amount_threshold",
        reason="issue 42: lower the line",
        mode="active",
        kind={"type": "amount_threshold", "threshold": 5000},
    )
    done = rules(pipeline, "put", str(lowered), "--author", "ana")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        "amount_threshold v2: updated",
        "  version: 1 -> 2",
    ]
    assert "  kind.threshold: 10000.0 -> 5000.0" in done.stdout
    # the seeded line counted in the amount unit; this one is in the stream's amounts
    assert "  kind.in_amount_units: true -> false" in done.stdout
    assert '  author: "settings" -> "ana"' in done.stdout
    wait_until(lambda: in_force(worker, "amount_threshold") == (2, "active"), timeout=10)

    again = rules(pipeline, "put", str(lowered), "--author", "ana")  # a new version each time
    assert again.returncode == 0 and "amount_threshold v3: updated" in again.stdout

    listed = rules(pipeline, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split()[1:4] for line in listed.stdout.splitlines()[1:]}
    assert rows["amount_threshold"] == ["v3", "active", "amount_threshold"]
    assert rows["user_deviation"] == ["v1", "active", "user_deviation"]

    shown = rules(pipeline, "show", "amount_threshold")
    assert orjson.loads(shown.stdout)["kind"] == {
        "type": "amount_threshold",
        "threshold": 5000.0,
        "in_amount_units": False,
    }


def test_a_stale_or_reused_version_is_refused_and_nothing_is_published(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.start_worker()
    stale = write(
        tmp_path / "stale.json",
        id="amount_threshold",
        version=1,
        reason="old",
        mode="active",
        kind={"type": "amount_threshold", "threshold": 1},
    )
    done = rules(pipeline, "put", str(stale), "--author", "ana")
    assert done.returncode == 2
    assert "refused" in done.stderr and "exists with other content" in done.stderr
    history = rules(pipeline, "history", "amount_threshold")
    versions = [line for line in history.stdout.splitlines() if not line.startswith("    ")]
    assert len(versions) == 1 and " v1 active by settings " in versions[0]  # only the seed
    seeded = '    kind: {"type":"amount_threshold","threshold":10000.0,"in_amount_units":true}'
    assert seeded in history.stdout


def test_disable_switches_a_rule_off_and_history_shows_every_version(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    worker = pipeline.start_worker()
    done = rules(pipeline, "disable", "habit_spike", "--reason", "too noisy", "--author", "bo")
    assert done.returncode == 0, done.stderr
    assert 'mode: "active" -> "disabled"' in done.stdout
    wait_until(lambda: in_force(worker, "habit_spike") == (2, "disabled"), timeout=10)

    history = rules(pipeline, "history", "habit_spike")
    assert history.returncode == 0, history.stderr
    versions = [line for line in history.stdout.splitlines() if not line.startswith("    ")]
    assert len(versions) == 2
    assert " v1 active by settings " in versions[0] and "seeded from" in versions[0]
    assert versions[1].endswith("too noisy") and " v2 disabled by bo " in versions[1]

    missing = rules(pipeline, "show", "no-such-rule")
    assert missing.returncode == 2 and "no rule 'no-such-rule'" in missing.stderr
