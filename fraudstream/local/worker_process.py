"""Run a fraudstream worker as a child process (demo, evaluate and tests use this)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fraudstream.local.ports import free_port

READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.2
#: How often :meth:`WorkerProcess.caught_up` reports progress while a backlog drains.
PROGRESS_SECONDS = 10.0

#: Consumer-group timings that make joins take seconds instead of ~30 s on Tansu.
FAST_JOIN_ENV = {
    "FRAUDSTREAM_BROKER_SESSION_TIMEOUT": "6",
    "FRAUDSTREAM_BROKER_REBALANCE_TIMEOUT": "6",
    "FRAUDSTREAM_BROKER_HEARTBEAT_INTERVAL": "2",
}


class WorkerFailed(RuntimeError):
    """The worker process exited or never became ready."""


class WorkerProcess:
    """A ``fraudstream worker`` child with its own web port, data dir and log file."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        log_level: str = "info",
        cwd: Path | None = None,
    ) -> None:
        """``cwd``: where the child starts, so ``python -m`` imports the package found there
        first (a benchmark runs a compiled copy this way); default: this process's."""
        self.web_port = free_port()
        self.env = {**os.environ, **env, "FRAUDSTREAM_WEB_PORT": str(self.web_port)}
        self.log_path = log_path
        self.log_level = log_level
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """Root of the worker's web server."""
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> WorkerProcess:
        """Spawn the worker (returns at once; see :meth:`wait_ready`)."""
        cmd = [sys.executable, "-m", "fraudstream", "worker", "-l", self.log_level]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()
        return self

    def alive(self) -> bool:
        """True while the child runs."""
        return self.process is not None and self.process.poll() is None

    def get_json(self, path: str) -> tuple[int, dict[str, Any]]:
        """GET a JSON view of the worker: (status, body); raises OSError when unreachable."""
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=2) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def stats(self) -> dict[str, Any]:
        """The worker's ``/stats`` counters."""
        return self.get_json("/stats")[1]

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Block until ``/health`` says the worker owns input partitions."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise WorkerFailed(f"worker exited early; see {self.log_path}\n{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                if self.get_json("/health")[0] == 200:
                    return
            time.sleep(POLL_SECONDS)
        raise WorkerFailed(f"worker not ready after {timeout:.0f}s\n{self.log_tail()}")

    def wait_processed(self, messages: int, timeout: float = 60.0) -> dict[str, Any]:
        """Block until the worker has read ``messages`` messages; return its stats."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if not self.alive():
                raise WorkerFailed(f"worker exited; see {self.log_path}\n{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                last = self.stats()
                if last["messagesIn"] >= messages:
                    return last
            time.sleep(POLL_SECONDS)
        raise WorkerFailed(f"worker read {last.get('messagesIn')} of {messages} messages in time")

    async def caught_up(
        self,
        sent: int,
        outputs_arrived: Callable[[dict[str, Any]], bool],
        timeout: float,
        progress: Callable[[int, int], None] | None = None,
        outputs_seen: Callable[[], int] = lambda: 0,
    ) -> bool:
        """Wait until the worker has read ``sent`` messages and the caller has its outputs.

        ``outputs_arrived(stats)`` says whether everything the worker reports having sent
        (alerts, dead letters) reached the caller's reader. A worker draining a long backlog
        keeps the wait going, and so do outputs still arriving (``outputs_seen()``, the count of
        what the caller has received): False only after ``timeout`` seconds without either.
        ``progress(read, sent)`` is called every ``PROGRESS_SECONDS`` while waiting.
        """
        deadline = time.monotonic() + timeout
        last_seen = (-1, -1)
        next_report = time.monotonic() + PROGRESS_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                stats = self.stats()
                read = int(stats["messagesIn"])
                if read >= sent and outputs_arrived(stats):
                    return True
                seen = (read, outputs_seen())
                if seen != last_seen:
                    last_seen, deadline = seen, time.monotonic() + timeout
                if progress is not None and time.monotonic() >= next_report:
                    progress(read, sent)
                    next_report = time.monotonic() + PROGRESS_SECONDS
            await asyncio.sleep(POLL_SECONDS)
        return False

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """Graceful stop (SIGTERM: commit offsets, flush), SIGKILL after ``timeout``."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the worker and anything it started."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The end of the worker's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
