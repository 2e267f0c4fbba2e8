"""Broker reachability tracking: a broker counts as reachable only when it answers."""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from fraudstream.local.ports import free_port
from fraudstream.worker.supervision import BrokerWatch, BrokerWatchdog, api_versions_request

TIMEOUT = 0.3


def _answer_like_a_broker(conn: socket.socket) -> None:
    """Read one request frame and reply with its correlation id (what Kafka does)."""
    (size,) = struct.unpack(">i", conn.recv(4, socket.MSG_WAITALL))
    request = conn.recv(size, socket.MSG_WAITALL)
    correlation_id = request[4:8]
    body = b"\x00\x00" + b"\x00\x00\x00\x00"  # error_code 0, empty api_keys array
    conn.sendall(struct.pack(">i", 4 + len(body)) + correlation_id + body)


def _answer_garbage(conn: socket.socket) -> None:
    conn.recv(1024)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")


@pytest.fixture
def server() -> Iterator[Callable[[Callable[[socket.socket], None] | None], int]]:
    """Start a loopback listener that handles each connection with ``handler`` (None: never)."""
    sockets: list[socket.socket] = []

    def start(handler: Callable[[socket.socket], None] | None) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        sockets.append(listener)

        def serve() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    handler(conn)  # type: ignore[misc]

        if handler is not None:  # None: the kernel accepts, nobody reads (a frozen broker)
            threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    for listener in sockets:
        listener.close()


def test_the_probe_is_an_api_versions_v0_request_frame() -> None:
    frame = api_versions_request(7)
    size, api_key, version, correlation_id = struct.unpack(">ihhi", frame[:12])
    assert (size, api_key, version, correlation_id) == (len(frame) - 4, 18, 0, 7)


def test_a_broker_that_answers_is_reachable(server: Callable[..., int]) -> None:
    watch = BrokerWatch(f"127.0.0.1:{server(_answer_like_a_broker)}", TIMEOUT)
    assert watch.check()
    assert watch.down_for() < 1


def test_a_frozen_broker_that_accepts_but_never_answers_is_unreachable(
    server: Callable[..., int],
) -> None:
    watch = BrokerWatch(f"127.0.0.1:{server(None)}", TIMEOUT)
    assert not watch.check()


def test_something_else_on_the_port_is_unreachable(server: Callable[..., int]) -> None:
    assert not BrokerWatch(f"127.0.0.1:{server(_answer_garbage)}", TIMEOUT).check()


def test_any_answering_bootstrap_address_is_enough(server: Callable[..., int]) -> None:
    watch = BrokerWatch(f"127.0.0.1:{free_port()},127.0.0.1:{server(_answer_like_a_broker)}")
    assert watch.check()


def test_nobody_listening_is_unreachable_and_recovery_is_reported_once() -> None:
    port = free_port()
    watch = BrokerWatch(f"127.0.0.1:{port}", TIMEOUT)
    assert not watch.check()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        threading.Thread(
            target=lambda: _answer_like_a_broker(listener.accept()[0]), daemon=True
        ).start()
        assert watch.check()
        assert watch.recovered()
        assert not watch.recovered()


def test_watchdog_warns_while_down_and_gives_up_after_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    given_up: list[float] = []
    watch = BrokerWatch(f"127.0.0.1:{free_port()}", TIMEOUT)
    log = logging.getLogger("test-watchdog")
    dog = BrokerWatchdog(watch, interval=0.01, give_up_after=3600, give_up=given_up.append, log=log)
    with caplog.at_level(logging.WARNING, logger="test-watchdog"):
        dog.tick()
    assert "unreachable for" in caplog.text
    assert given_up == []
    dog.give_up_after = 0
    dog.tick()
    assert len(given_up) == 1


def test_watchdog_reports_a_recovered_broker(
    server: Callable[..., int], caplog: pytest.LogCaptureFixture
) -> None:
    watch = BrokerWatch(f"127.0.0.1:{server(_answer_like_a_broker)}", TIMEOUT)
    watch._was_down = True  # as after a failed check
    dog = BrokerWatchdog(watch, 0.01, 3600, lambda down_for: None, logging.getLogger("test-wd"))
    with caplog.at_level(logging.WARNING, logger="test-wd"):
        dog.tick()
    assert "reachable again" in caplog.text


def test_watchdog_thread_probes_until_stopped() -> None:
    given_up = threading.Event()
    watch = BrokerWatch(f"127.0.0.1:{free_port()}", TIMEOUT)
    dog = BrokerWatchdog(watch, 0.01, 0, lambda down_for: given_up.set(), logging.getLogger())
    dog.start()
    try:
        assert given_up.wait(10), "the watchdog thread never gave up on a dead broker"
    finally:
        dog.stop()
        dog.join(5)
    assert not dog.is_alive()


def test_bootstrap_addresses_without_a_port_are_on_kafkas_port() -> None:
    # Faust and aiokafka read "kafka-0" as kafka-0:9092; the watch must not refuse to start
    watch = BrokerWatch("kafka-0,kafka-1:19092,[::1]:9093")
    assert watch.hosts == [("kafka-0", 9092), ("kafka-1", 19092), ("::1", 9093)]


def test_a_port_that_is_not_a_number_is_named() -> None:
    with pytest.raises(ValueError, match="'kafka-0:90x2'"):
        BrokerWatch("kafka-0:90x2")
