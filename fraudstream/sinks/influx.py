"""InfluxDB sink: transactions, alerts and worker metrics as points, never blocking the stream.

The points themselves are built by :mod:`fraudstream.sinks.line_protocol` (pure).

Delivery
--------
:meth:`InfluxSink.write` runs on the event loop: it formats the lines and appends them to a bounded
in-memory buffer (O(1), never blocks on I/O, never raises). A daemon thread sends batches of up to
``batch_size`` lines (or whatever accumulated after ``flush_interval`` seconds) with the
synchronous ``WriteApi`` of ``influxdb-client``, gzip-compressed, precision ns.

* Connection errors, timeouts, 5xx, 408 and 429: the same batch is retried with exponential
  backoff (``retry_initial`` doubling up to ``retry_max``, with jitter, at least ``Retry-After``)
  until it is written; it is never dropped, while new points keep filling the buffer.
* Buffer full: the **oldest** buffered point is dropped (``dropped_overflow``, a warning at most
  every 10 s). A dashboard is about *now*: after an outage longer than the buffer holds, keeping
  the newest points leaves the gap in the past rather than right before the present, and the
  dashboard resumes with the minutes before recovery instead of the minutes the outage began.
* Any other 4xx (400 bad line protocol, 401/403 token, 404 bucket not found, 413, 422): the batch
  is rejected (``dropped_rejected``) and an error with the response body is logged (at most every
  10 s per status, with the count). Retrying cannot fix the data, and a token or bucket problem
  needs an operator: holding batches for a bucket that may never exist would only pin the buffer
  at its maximum and turn every point into an overflow drop anyway. Once the bucket is created,
  the next batch goes through. A *partial* write counts as rejected the points InfluxDB names in
  its error (``dropped=N``, and each ``unable to parse '<line>'``: InfluxDB 1.x writes the other
  lines of the batch and says ``dropped=0`` for lines it could not parse, e.g. a time outside its
  range) and the rest as written.
* :meth:`InfluxSink.close` drains: it keeps sending (and retrying) until the buffer is empty or
  its timeout passes, then counts whatever is left in ``dropped_on_close``. It returns after about
  ``timeout`` seconds even when InfluxDB hangs; a request still in flight then is counted as
  dropped even though InfluxDB may store it later.

Counters (:meth:`InfluxSink.stats`): ``queued`` points accepted by ``write``/``write_metrics``,
``written`` acknowledged by InfluxDB, ``batches`` requests that got an answer other than "retry",
``retries`` failed attempts, ``dropped_overflow`` / ``dropped_rejected`` / ``dropped_on_close``
points lost and why, ``dropped_invalid`` *records* that could not be turned into points (never
queued), among them records whose time InfluxDB cannot store (before 1677-09-21 or after
2262-04-11: InfluxDB would drop their lines); gauges ``buffered`` and ``in_flight`` (the batch
being sent). At every quiet moment ``queued == written + dropped_overflow + dropped_rejected +
dropped_on_close + buffered + in_flight``. The token is handed to the client only: it is in no
attribute of the sink, its ``repr`` or any log line.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from enum import Enum
from typing import TYPE_CHECKING, Any

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from fraudstream.log_throttle import RepeatThrottle
from fraudstream.sinks.base import ProcessedRecord
from fraudstream.sinks.line_protocol import TimeOutOfRange, metrics_line, record_lines

if TYPE_CHECKING:
    from fraudstream.settings import InfluxSettings

log = logging.getLogger(__name__)

_PARTIAL_DROPPED = re.compile(rb"dropped=(\d+)")
#: InfluxDB 1.x names each line it could not parse (a partial write's error joins them with \n).
_UNPARSEABLE = re.compile(rb"(?:partial write: |\\n|\n)unable to parse '")
#: Client-side statuses worth retrying: the request may succeed later unchanged.
_RETRYABLE_4XX = frozenset({408, 429})


class _Outcome(Enum):
    WRITTEN = "written"
    REJECTED = "rejected"
    RETRY = "retry"


class _ThrottledLog:
    """The sink's log: a recurring condition at most once per interval, with how often."""

    def __init__(self, interval: float) -> None:
        self.throttle = RepeatThrottle(interval)

    def __call__(self, key: str, level: int, msg: str, *args: Any, exc_info: bool = False) -> None:
        passed, suffix = self.throttle.admit(key)
        if passed:
            log.log(level, f"{msg}%s", *args, suffix, exc_info=exc_info)


class InfluxSink:
    """Buffers points in memory and writes them to InfluxDB (v2 API) from a background thread.

    See the module docstring for the point schema, the retry and drop policy and the counters.
    """

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        *,
        write_transactions: bool = True,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        max_buffered_points: int = 100_000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        request_timeout: float = 10.0,
        log_interval: float = 10.0,
    ) -> None:
        if batch_size < 1 or max_buffered_points < 1:
            raise ValueError("batch_size and max_buffered_points must be >= 1")
        if flush_interval <= 0 or retry_initial <= 0 or retry_max < retry_initial:
            raise ValueError("need flush_interval > 0 and 0 < retry_initial <= retry_max")
        if request_timeout <= 0:
            raise ValueError("request_timeout must be > 0")
        self.url = url
        self.org = org
        self.bucket = bucket
        self.write_transactions = write_transactions
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffered_points = max_buffered_points
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.request_timeout = request_timeout
        # The token lives in the client only (never in an attribute of ours, a repr or a log).
        self._client = InfluxDBClient(
            url=url,
            token=token,
            org=org,
            enable_gzip=True,
            timeout=max(1, int(request_timeout * 1000)),
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._buffer: deque[str] = deque()
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._deadline = math.inf
        self._thread: threading.Thread | None = None
        self._closed = False
        self._abandoned = False
        self._in_flight = 0
        self._queued = 0
        self._written = 0
        self._batches = 0
        self._retries = 0
        self._dropped_overflow = 0
        self._dropped_rejected = 0
        self._dropped_on_close = 0
        self._dropped_invalid = 0
        self._log = _ThrottledLog(log_interval)

    @classmethod
    def from_settings(cls, settings: InfluxSettings, **overrides: Any) -> InfluxSink:
        """Build the sink from the ``influx_*`` settings; keyword ``overrides`` win."""
        kwargs: dict[str, Any] = {
            "url": settings.influx_url,
            "token": settings.influx_token_value(),
            "org": settings.influx_org,
            "bucket": settings.influx_bucket,
            "write_transactions": settings.influx_write_transactions,
            "batch_size": settings.influx_batch_size,
            "flush_interval": settings.influx_flush_interval,
            "max_buffered_points": settings.influx_max_buffered_points,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        return (
            f"InfluxSink(url={self.url!r}, org={self.org!r}, bucket={self.bucket!r}, "
            f"buffered={len(self._buffer)}, closed={self._closed})"
        )

    # --- hot path (event loop) ----------------------------------------------------------------

    def write(self, record: ProcessedRecord) -> None:
        """Queue the record's points; O(1), never blocks on I/O, never raises."""
        try:
            lines = record_lines(record, self.write_transactions)
        except TimeOutOfRange as exc:
            self._dropped_invalid += 1
            self._log("out_of_range", logging.WARNING, "record not written to InfluxDB: %s", exc)
            return
        except Exception:
            self._dropped_invalid += 1
            self._log("invalid", logging.ERROR, "cannot turn a record into points", exc_info=True)
            return
        self._enqueue(lines)

    def write_metrics(self, worker: str, metrics: dict[str, Any], at_epoch_s: float) -> None:
        """Queue one ``worker_stats`` point; never raises."""
        try:
            line = metrics_line(worker, metrics, at_epoch_s)
        except Exception:
            self._dropped_invalid += 1
            self._log("invalid", logging.ERROR, "cannot turn metrics into a point", exc_info=True)
            return
        if line is not None:
            self._enqueue([line])

    def _enqueue(self, lines: list[str]) -> None:
        if not lines:
            return
        if self._thread is None and not self._closed:
            try:
                self.start()
            except Exception:  # e.g. no thread can be started: points wait in the buffer
                self._log("start", logging.ERROR, "cannot start the InfluxDB writer", exc_info=True)
        buffer = self._buffer
        overflowed = False
        with self._lock:
            self._queued += len(lines)
            if self._closed:
                self._dropped_on_close += len(lines)
                closed_drop = True
            else:
                closed_drop = False
                for line in lines:
                    if len(buffer) >= self.max_buffered_points:
                        buffer.popleft()
                        self._dropped_overflow += 1
                        overflowed = True
                    buffer.append(line)
            full = len(buffer) >= self.batch_size
        if closed_drop:
            self._log("after_close", logging.WARNING, "InfluxDB sink is closed; points dropped")
            return
        if overflowed:
            self._log(
                "overflow",
                logging.WARNING,
                "InfluxDB sink buffer full (%d points): dropping the oldest; %d dropped so far",
                self.max_buffered_points,
                self._dropped_overflow,
            )
        if full and not self._wake.is_set():
            self._wake.set()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (idempotent; ``write`` calls it on first use)."""
        with self._start_lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(target=self._run, name="influx-sink", daemon=True)
            self._thread = thread
        log.info(
            "InfluxDB sink writing to %s (org=%s, bucket=%s, batch=%d, buffer=%d)",
            self.url,
            self.org,
            self.bucket,
            self.batch_size,
            self.max_buffered_points,
        )
        thread.start()

    def stats(self) -> dict[str, int]:
        """Counters (see the module docstring); ``buffered`` and ``in_flight`` are gauges."""
        with self._lock:
            return {
                "queued": self._queued,
                "written": self._written,
                "batches": self._batches,
                "retries": self._retries,
                "dropped_overflow": self._dropped_overflow,
                "dropped_rejected": self._dropped_rejected,
                "dropped_on_close": self._dropped_on_close,
                "dropped_invalid": self._dropped_invalid,
                "buffered": len(self._buffer),
                "in_flight": self._in_flight,
            }

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered (retrying until ``timeout`` s have passed), then stop."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._deadline = time.monotonic() + max(timeout, 0.0)
        self._closing.set()
        self._wake.set()
        if thread is not None:
            # The worker stops retrying at the deadline; a request in flight may hold it longer.
            thread.join(max(self._deadline - time.monotonic(), 0.0) + 0.25)
        with self._lock:
            if thread is not None and thread.is_alive():
                self._abandoned = True
            left = len(self._buffer) + self._in_flight
            self._dropped_on_close += left
            self._buffer.clear()
            self._in_flight = 0
            stats = (self._queued, self._written, self._dropped_overflow, self._dropped_rejected)
        if left:
            log.error(
                "InfluxDB sink closed with %d points not written (InfluxDB unreachable for %.1f s)",
                left,
                timeout,
            )
        log.info(
            "InfluxDB sink closed: queued=%d written=%d dropped_overflow=%d dropped_rejected=%d "
            "dropped_on_close=%d",
            *stats,
            self._dropped_on_close,
        )
        if thread is None or not thread.is_alive():
            self._client.close()

    # --- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        """Take batches and write them until closed; retry a failed batch, never drop it."""
        pending: list[str] | None = None
        delay = self.retry_initial
        failing_since: float | None = None
        for batch in self._batches_to_send():
            pending = batch
            while pending is not None:
                outcome, retry_after = self._send(pending)
                if self._abandoned:
                    return
                if outcome is not _Outcome.RETRY:
                    pending = None
                    if failing_since is not None and outcome is _Outcome.WRITTEN:
                        outage = time.monotonic() - failing_since
                        log.warning("InfluxDB writes recovered after %.1f s", outage)
                    failing_since = None
                    delay = self.retry_initial
                    break
                if failing_since is None:
                    failing_since = time.monotonic()
                wait = max(delay * (0.5 + random.random() / 2), retry_after)
                wait = min(wait, self.retry_max)
                delay = min(delay * 2, self.retry_max)
                if not self._sleep_before_retry(wait):
                    return  # closing and out of time: close() counts what is left

    def _batches_to_send(self) -> Iterator[list[str]]:
        """Yield full batches at once, partial ones every ``flush_interval``; stop at close."""
        next_flush = time.monotonic() + self.flush_interval
        while True:
            closing = self._closing.is_set()
            if closing and time.monotonic() >= self._deadline:
                return
            if not closing and len(self._buffer) < self.batch_size:
                self._wake.clear()
                remaining = next_flush - time.monotonic()
                if len(self._buffer) < self.batch_size and remaining > 0:
                    self._wake.wait(remaining)
                    continue
            next_flush = time.monotonic() + self.flush_interval
            with self._lock:
                n = min(self.batch_size, len(self._buffer))
                if n == len(self._buffer):
                    batch = list(self._buffer)
                    self._buffer.clear()
                else:
                    batch = [self._buffer.popleft() for _ in range(n)]
                self._in_flight = n
            if batch:
                yield batch
            elif closing:
                return

    def _sleep_before_retry(self, wait: float) -> bool:
        """Back off; False when closing and the deadline leaves no time for another try."""
        if self._closing.is_set():
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(wait, remaining))
            return time.monotonic() < self._deadline
        # close() sets the event: retry at once then, and from then on within its deadline.
        self._closing.wait(wait)
        return True

    def _send(self, batch: list[str]) -> tuple[_Outcome, float]:
        """Write one batch; count the outcome. Returns it and a server-requested delay (s)."""
        body = "\n".join(batch).encode("utf-8", "surrogateescape")
        n = len(batch)
        try:
            self._write_api.write(
                bucket=self.bucket,
                org=self.org,
                record=body,
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]  # a str constant
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            if 400 <= status < 500 and status not in _RETRYABLE_4XX:
                self._reject(batch, status, exc.body)
                return _Outcome.REJECTED, 0.0
            self._retry(n, f"HTTP {status}: {_body_text(exc.body)}")
            return _Outcome.RETRY, _retry_after_seconds(exc.retry_after)
        except Exception as exc:  # connection refused, timeout, protocol error ...
            self._retry(n, f"{type(exc).__name__}: {exc}")
            return _Outcome.RETRY, 0.0
        with self._lock:
            if not self._abandoned:
                self._written += n
                self._batches += 1
                self._in_flight = 0
        return _Outcome.WRITTEN, 0.0

    def _retry(self, n: int, error: str) -> None:
        with self._lock:
            if self._abandoned:
                return
            self._retries += 1
            buffered = len(self._buffer)
        self._log(
            "retry",
            logging.WARNING,
            "InfluxDB write of %d points failed, retrying with backoff (%d more buffered): %s",
            n,
            buffered,
            error,
        )

    def _reject(self, batch: list[str], status: int, body: Any) -> None:
        """Count a 4xx answer: the whole batch, or what a partial write's error names."""
        n = len(batch)
        dropped = rejected_points(body, n)
        with self._lock:
            if self._abandoned:
                return
            self._dropped_rejected += dropped
            self._written += n - dropped
            self._batches += 1
            self._in_flight = 0
        self._log(
            f"rejected-{status}",
            logging.ERROR,
            "InfluxDB rejected %d of %d points (HTTP %d, not retried; %d rejected so far): %s",
            dropped,
            n,
            status,
            self._dropped_rejected,
            _body_text(body),
        )


def rejected_points(body: Any, n: int) -> int:
    """How many of a rejected batch's ``n`` points InfluxDB did not write, from its error body.

    A partial write names ``dropped=N`` (e.g. a field type conflict) and, apart from that,
    each line it could not parse; any other error rejected the whole batch.
    """
    data = body if isinstance(body, bytes) else str(body).encode()
    dropped = _PARTIAL_DROPPED.findall(data)
    if not dropped:
        return n
    # the last one: InfluxDB appends it after the lines it quotes
    return min(int(dropped[-1]) + len(_UNPARSEABLE.findall(data)), n)


def _body_text(body: Any, limit: int = 1000) -> str:
    """An HTTP response body for a log line, shortened."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return text if len(text) <= limit else text[:limit] + "..."


def _retry_after_seconds(value: Any) -> float:
    """Seconds from a ``Retry-After`` header (0 when absent or an HTTP date)."""
    try:
        return max(float(value), 0.0) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
