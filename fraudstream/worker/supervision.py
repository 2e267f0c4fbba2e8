"""Is any bootstrap broker answering requests, and for how long has none been?

A TCP connect alone is not enough: the kernel keeps accepting connections for a broker that
is frozen (stopped process, long GC pause, hung disk) while nothing answers. So a check sends
the smallest Kafka request there is, ApiVersions v0 (allowed before SASL authentication), and
counts the broker as reachable only when a response frame with its correlation id comes back.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable

from fraudstream.kafka.connection import host_and_port

CONNECT_TIMEOUT_SECONDS = 2.0
API_VERSIONS_KEY = 18
CLIENT_ID = b"fraudstream-broker-watch"
#: Correlation ids only need to differ between our own requests on one connection.
CORRELATION_ID = 0x0F5A
#: Any sane ApiVersions response is far smaller; a larger size prefix means garbage.
MAX_RESPONSE_BYTES = 1 << 20

#: Exit status when the broker stayed unreachable: a supervisor should restart the worker.
EXIT_BROKER_UNREACHABLE = 3
#: Exit status when profile changes could not be written to the changelog.
EXIT_STATE_NOT_SAVED = 4
#: Exit status when a batch's transaction failed (exactly-once): fenced, or the broker refused.
EXIT_TRANSACTION_FAILED = 5


def api_versions_request(correlation_id: int = CORRELATION_ID) -> bytes:
    """An ApiVersions v0 request frame (size prefix, header v1, empty body)."""
    header = struct.pack(">hhih", API_VERSIONS_KEY, 0, correlation_id, len(CLIENT_ID)) + CLIENT_ID
    return struct.pack(">i", len(header)) + header


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def broker_answers(
    host: str, port: int, timeout: float, ssl_context: ssl.SSLContext | None = None
) -> bool:
    """True when the broker at ``host:port`` answers an ApiVersions request within ``timeout``."""
    try:
        with socket.create_connection((host, port), timeout) as raw:
            raw.settimeout(timeout)
            tls = ssl_context.wrap_socket(raw, server_hostname=host) if ssl_context else None
            with tls or raw as sock:
                sock.sendall(api_versions_request())
                (size,) = struct.unpack(">i", _receive_exactly(sock, 4))
                if not 4 <= size <= MAX_RESPONSE_BYTES:
                    return False
                (correlation_id,) = struct.unpack(">i", _receive_exactly(sock, 4))
                return correlation_id == CORRELATION_ID
    except OSError:  # refused, timed out, reset, closed, TLS failure
        return False


class BrokerWatch:
    """Tracks whether the broker answers, from its own probe (independent of client internals)."""

    def __init__(
        self,
        bootstrap: str,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.connect_timeout = connect_timeout
        self.ssl_context = ssl_context
        self.hosts = [host_and_port(address) for address in bootstrap.split(",") if address]
        self.last_ok = time.monotonic()
        self._was_down = False

    def check(self) -> bool:
        """Probe each bootstrap address; blocking, so run it off the event loop."""
        for host, port in self.hosts:
            if broker_answers(host, port, self.connect_timeout, self.ssl_context):
                self.last_ok = time.monotonic()
                return True
        self._was_down = True
        return False

    def down_for(self) -> float:
        """Seconds since a broker last answered."""
        return time.monotonic() - self.last_ok

    def recovered(self) -> bool:
        """True once after the first successful check that follows a failed one."""
        was_down, self._was_down = self._was_down, False
        return was_down


class BrokerWatchdog(threading.Thread):
    """Probes the broker from its own thread; gives up after ``give_up_after`` seconds down.

    A thread, not a Faust timer: Faust starts timers only after table recovery, and recovery
    waits on the broker, so a broker that froze during start-up silenced a timer-based watch
    (seen in CI: no log line for 60 s). A thread also keeps watching if the event loop blocks.
    """

    def __init__(
        self,
        watch: BrokerWatch,
        interval: float,
        give_up_after: float,
        give_up: Callable[[float], None],
        log: logging.Logger,
    ) -> None:
        super().__init__(name="fraudstream-broker-watchdog", daemon=True)
        self.watch = watch
        self.interval = interval
        self.give_up_after = give_up_after
        self.give_up = give_up
        self.log = log
        self._stopping = threading.Event()

    def run(self) -> None:
        """Check every ``interval`` seconds until stopped (or given up)."""
        while not self._stopping.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        """One probe: log a recovery, warn while down, give up after the limit."""
        if self.watch.check():
            if self.watch.recovered():
                self.log.warning("broker %s reachable again", self.watch.bootstrap)
            return
        down_for = self.watch.down_for()
        if down_for < self.give_up_after:
            self.log.warning(
                "broker %s unreachable for %.0f s (exit after %.0f s)",
                self.watch.bootstrap,
                down_for,
                self.give_up_after,
            )
            return
        self.give_up(down_for)

    def stop(self) -> None:
        """Stop after the current probe."""
        self._stopping.set()
