"""Broker reachability tracking."""

from __future__ import annotations

import socket

from fraudstream.broker_watch import BrokerWatch
from fraudstream.tansu import free_port


def test_a_listening_broker_is_reachable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        watch = BrokerWatch(f"127.0.0.1:{server.getsockname()[1]}")
        assert watch.check()
        assert watch.down_for() < 1


def test_nobody_listening_is_unreachable_and_recovery_is_reported_once() -> None:
    port = free_port()
    watch = BrokerWatch(f"127.0.0.1:{port},127.0.0.1:{free_port()}")
    assert not watch.check()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert watch.check()
        assert watch.recovered()
        assert not watch.recovered()
