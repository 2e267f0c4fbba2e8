"""The ``fraudstream`` command as a user runs it: tail and the embedded demo."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.conftest import Pipeline
from tests.integration.test_worker import SEED

pytestmark = pytest.mark.integration


def test_tail_prints_alerts_and_dead_letters_readably(pipeline: Pipeline) -> None:
    worker = pipeline.start_worker()
    pipeline.send([(b"bad", b"not json")])
    pipeline.send_json([{**SEED, "transactionId": "tx-seed"}])
    worker.wait_processed(2)

    result = subprocess.run(
        [sys.executable, "-m", "fraudstream", "tail", "--dlq", "--from-beginning", "--max", "2"],
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = sorted(result.stdout.splitlines())
    assert len(lines) == 2
    assert lines[0].startswith("ALERT 2024-12-04T15:00:00.000Z  user=12345")
    assert "reasons=[amount_threshold(>10000)]" in lines[0] and "tx=tx-seed" in lines[0]
    assert lines[1].startswith(f"DLQ   {pipeline.input_topic}[")
    assert "invalid_json" in lines[1]


def processes_with(marker: str) -> set[int]:
    """PIDs of running processes whose environment carries ``marker`` (children inherit it)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ:
            found.add(int(entry.name))
    return found


def demo_env() -> tuple[dict[str, str], str]:
    """The user's environment without FRAUDSTREAM_* settings, tagged to find our children."""
    marker = f"DEMO_TEST_MARKER={uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDSTREAM_")}
    env["DEMO_TEST_MARKER"] = marker.split("=", 1)[1]
    return env, marker


def demo_command(duration: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fraudstream",
        "demo",
        "--duration",
        str(duration),
        "--rate",
        "200",
    ]


def test_demo_runs_end_to_end_and_leaves_no_process_behind() -> None:
    env, marker = demo_env()
    result = subprocess.run(demo_command(6), env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "worker ready" in result.stdout
    assert "ALERT " in result.stdout
    assert "transactions sent      1200" in result.stdout
    assert "worker read            1200 messages" in result.stdout
    assert re.search(r"alerts that were fraud \d+ of \d+ \(precision ", result.stdout)
    assert processes_with(marker) == set()


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_stops_everything_on_ctrl_c_or_sigterm(signum: int) -> None:
    env, marker = demo_env()
    demo = subprocess.Popen(
        demo_command(120),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # as from a terminal: a suite started in the background by a non-interactive shell
        # (``make test &``) ignores SIGINT, children inherit that, and Ctrl-C would never arrive
        preexec_fn=_sigint_as_in_a_terminal,
    )
    assert demo.stdout is not None
    for line in demo.stdout:  # wait until the load is flowing
        if line.startswith("["):
            break
    demo.send_signal(signum)
    output, _ = demo.communicate(timeout=60)
    assert demo.returncode == 130, output
    assert processes_with(marker) == set()


def test_replay_dlq_resends_fixed_input_after_a_limit_is_raised(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(FRAUDSTREAM_MAX_MESSAGE_BYTES="100")
    worker = pipeline.start_worker()
    big = {**SEED, "transactionId": "big-1", "note": "x" * 150}  # over the 100-byte limit
    pipeline.send([(b"12345", orjson.dumps(big)), (b"k", b"\xff\xfe")])
    worker.wait_processed(2)
    assert worker.stop() == 0

    pipeline.env["FRAUDSTREAM_MAX_MESSAGE_BYTES"] = "65536"  # the fix
    worker = pipeline.start_worker()
    # An oversized payload is kept truncated, so it cannot be replayed; bad UTF-8 can.
    result = subprocess.run(
        [sys.executable, "-m", "fraudstream", "replay-dlq", "--idle-timeout", "2"],
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "re-sent 1 dead letters" in result.stderr and "skipped 1" in result.stderr
    stats = worker.wait_processed(1)
    assert stats["dlq"] == 1  # the replayed garbage is refused again, with its reason
