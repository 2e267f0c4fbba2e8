"""A worker whose broker goes away exits non-zero with a clear message instead of hanging."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fraudstream.kafka.topics import ensure_topics_sync
from fraudstream.local.tansu import TansuBroker
from fraudstream.local.worker_process import FAST_JOIN_ENV, WorkerProcess

pytestmark = pytest.mark.integration


def start_watched_worker(broker: TansuBroker, tmp_path: Path) -> WorkerProcess:
    """A worker that checks its broker every second and gives up after 4 s without it."""
    env = {
        "FRAUDSTREAM_BROKER_URL": broker.url,
        "FRAUDSTREAM_DATA_DIR": str(tmp_path / "data"),
        "FRAUDSTREAM_BROKER_UNAVAILABLE_TIMEOUT": "4",
        "FRAUDSTREAM_BROKER_CHECK_INTERVAL": "1",
        **FAST_JOIN_ENV,
    }
    return WorkerProcess(env, tmp_path / "worker.log").start()


def test_worker_exits_with_status_3_when_the_broker_stays_away(tmp_path: Path) -> None:
    broker = TansuBroker(log_path=tmp_path / "tansu.log").start()  # its own: this test kills it
    try:
        ensure_topics_sync(broker.bootstrap, ["transactions-input"], 4)
        worker = start_watched_worker(broker, tmp_path)
        worker.wait_ready()
    finally:
        broker.stop()
    assert worker.process is not None
    started = time.monotonic()
    code = worker.process.wait(timeout=60)
    waited = time.monotonic() - started
    log = worker.log_path.read_text()
    assert code == 3, worker.log_tail()
    assert "unreachable for" in log and "exiting with status 3" in log
    assert waited < 30


@pytest.mark.parametrize("freeze_at", ["after_ready", "during_start_up"])
def test_worker_exits_with_status_3_when_the_broker_freezes_for_good(
    tmp_path: Path, freeze_at: str
) -> None:
    """A frozen broker still accepts TCP connections: the watchdog must notice it answers nothing.

    Before the watchdog probed with a Kafka request, a plain connect succeeded and the worker
    waited on a stopped broker forever. ``during_start_up``: Faust starts its timers only after
    table recovery, which waits on the broker; a timer-based watchdog never ran (seen in CI).
    """
    broker = TansuBroker(log_path=tmp_path / "tansu.log").start()  # its own: this test stops it
    assert broker.process is not None
    try:
        ensure_topics_sync(broker.bootstrap, ["transactions-input"], 4)
        worker = start_watched_worker(broker, tmp_path)
        if freeze_at == "after_ready":
            worker.wait_ready()
        os.kill(broker.process.pid, signal.SIGSTOP)
        assert worker.process is not None
        try:
            code = worker.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker still runs 60 s after the broker froze\n{worker.log_tail()}")
        finally:
            worker.kill()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(broker.process.pid, signal.SIGCONT)
        broker.stop()
    log = worker.log_path.read_text()
    assert code == 3, worker.log_tail()
    assert "unreachable for" in log and "exiting with status 3" in log
