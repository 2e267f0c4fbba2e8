"""Free TCP ports for the brokers, servers and workers that local runs and tests start."""

from __future__ import annotations

import contextlib
import socket


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports nobody listens on right now (bound to port 0 together).

    >>> a, b = free_ports(2)
    >>> a != b and 0 < a < 65536
    True
    """
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it).

    >>> 0 < free_port() < 65536
    True
    """
    return free_ports(1, host)[0]
