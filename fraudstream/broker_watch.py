"""Is any bootstrap broker accepting TCP connections, and for how long has none been?"""

from __future__ import annotations

import contextlib
import socket
import time

CONNECT_TIMEOUT_SECONDS = 2.0


class BrokerWatch:
    """Tracks broker reachability from plain TCP connects (independent of client internals)."""

    def __init__(self, bootstrap: str, connect_timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self.bootstrap = bootstrap
        self.connect_timeout = connect_timeout
        self.hosts = [_split(address) for address in bootstrap.split(",") if address]
        self.last_ok = time.monotonic()
        self._was_down = False

    def check(self) -> bool:
        """Try each bootstrap address; blocking, so run it off the event loop."""
        for host, port in self.hosts:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((host, port), self.connect_timeout),
            ):
                self.last_ok = time.monotonic()
                return True
        self._was_down = True
        return False

    def down_for(self) -> float:
        """Seconds since a broker last accepted a connection."""
        return time.monotonic() - self.last_ok

    def recovered(self) -> bool:
        """True once after the first successful check that follows a failed one."""
        was_down, self._was_down = self._was_down, False
        return was_down


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return host.strip("[]") or "localhost", int(port or 9092)
