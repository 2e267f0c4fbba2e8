"""``fraudstream rules put`` refuses a bad definition file before it ever connects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from fraudstream.cli.exits import EXIT_REFUSED
from fraudstream.cli.rules import complete_definition

#: Nothing listens here: a refusal must come before any connection attempt.
NO_BROKER = "kafka://127.0.0.1:9"


def put(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudstream", "rules", "put", str(path), "--author", "ana"],
        env={**os.environ, "FRAUDSTREAM_BROKER_URL": NO_BROKER},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"{not json", "is not JSON"),
        (b"[1, 2]", "must hold one JSON object"),
        (
            orjson.dumps({"id": "r1", "reason": "x", "mode": "active", "kind": {"type": "nope"}}),
            "kind",
        ),
        (
            orjson.dumps(
                {
                    "id": "r1",
                    "reason": "x",
                    "mode": "active",
                    "kind": {"type": "expression", "expression": "amount >> 5"},
                }
            ),
            "kind.expression.expression",
        ),
        (
            orjson.dumps(
                {
                    "id": "Bad Id",
                    "reason": "x",
                    "mode": "active",
                    "kind": {"type": "amount_threshold", "threshold": 5},
                }
            ),
            "id: String should match pattern",
        ),
        (
            orjson.dumps(
                {"id": "r1", "mode": "active", "kind": {"type": "amount_threshold", "threshold": 5}}
            ),
            "reason: Field required",
        ),
    ],
)
def test_an_invalid_definition_file_is_refused_with_the_reason_and_exit_2(
    tmp_path: Path, content: bytes, complaint: str
) -> None:
    path = tmp_path / "rule.json"
    path.write_bytes(content)
    done = put(path)
    assert done.returncode == EXIT_REFUSED, done.stderr
    assert done.stderr.startswith("error: ") and complaint in done.stderr, done.stderr
    assert "cannot reach the broker" not in done.stderr  # refused before connecting
    assert done.stdout == ""


def test_a_missing_file_is_refused() -> None:
    done = put(Path("/nonexistent/rule.json"))
    assert done.returncode == EXIT_REFUSED and "cannot read" in done.stderr


def test_a_definition_file_may_leave_version_time_and_author_to_the_command() -> None:
    filled = complete_definition({"id": "r1"}, None, "ana", "because")
    assert (filled["version"], filled["author"], filled["reason"]) == (1, "ana", "because")
    assert filled["created_at"].endswith("Z")
    own = complete_definition({"id": "r1", "version": 7, "author": "bo"}, None, "ana", None)
    assert (own["version"], own["author"], "reason" in own) == (7, "bo", False)
