"""The test proxy cuts like a dead broker process: every connection reset, the port refused.

It once closed a client socket from one pump thread while the other was blocked reading it:
the connection then stayed open without a word, and a Kafka client waiting there for the answer
to its produce request waited for its whole request timeout (the flaky outage test).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.tcp_proxy import TcpProxy

CONNECTIONS = 40
ROUNDS = 5
#: Far more than a reset takes on loopback, far less than any client's request timeout.
NOTICE_SECONDS = 2.0


class Upstream:
    """A loopback server that echoes what it gets, or holds it unanswered (``echo=False``)."""

    def __init__(self, echo: bool) -> None:
        self.echo = echo
        self.accepted: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)
            if self.echo:
                threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def holding() -> Iterator[Upstream]:
    upstream = Upstream(echo=False)
    yield upstream
    upstream.close()


@pytest.fixture
def echoing() -> Iterator[Upstream]:
    upstream = Upstream(echo=True)
    yield upstream
    upstream.close()


def connect(proxy: TcpProxy) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=NOTICE_SECONDS)
    client.settimeout(NOTICE_SECONDS)
    return client


def ended(client: socket.socket) -> bool:
    """The peer closed or reset the connection within NOTICE_SECONDS."""
    try:
        return client.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:  # reset
        return True


def test_cut_ends_every_connection_with_a_request_in_flight(holding: Upstream) -> None:
    for _ in range(ROUNDS):
        proxy = TcpProxy(holding.address).start()
        clients = [connect(proxy) for _ in range(CONNECTIONS)]
        for client in clients:
            client.sendall(b"request")  # read by the proxy, forwarded, never answered
        deadline = time.monotonic() + NOTICE_SECONDS
        while len(holding.accepted) < CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.01)
        proxy.cut()
        hanging = sum(not ended(client) for client in clients)
        for client in clients:
            client.close()
        holding.accepted.clear()
        assert hanging == 0, f"{hanging} of {CONNECTIONS} connections left open by cut()"


def test_the_port_refuses_while_cut_and_listens_again_when_restored(echoing: Upstream) -> None:
    proxy = TcpProxy(echoing.address).start()
    proxy.cut()  # nobody connects in between: the listener must close all the same
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    proxy.restore()
    client = connect(proxy)
    client.sendall(b"ping")
    assert client.recv(4) == b"ping"
    client.close()
    proxy.stop()


def test_an_upstream_that_closes_closes_the_client(echoing: Upstream) -> None:
    proxy = TcpProxy(echoing.address).start()
    client = connect(proxy)
    client.sendall(b"ping")
    assert client.recv(4) == b"ping"
    echoing.accepted[0].shutdown(socket.SHUT_RDWR)
    assert ended(client)
    client.close()
    proxy.stop()


def test_silence_keeps_connections_open_and_unanswered_and_forwards_new_ones(
    echoing: Upstream,
) -> None:
    proxy = TcpProxy(echoing.address).start()
    old = connect(proxy)
    old.sendall(b"ping")
    assert old.recv(4) == b"ping"
    proxy.silence()
    old.sendall(b"ping")
    with pytest.raises(TimeoutError):  # neither an answer nor an end
        old.recv(4)
    new = connect(proxy)
    new.sendall(b"ping")
    assert new.recv(4) == b"ping"
    for client in (old, new):
        client.close()
    proxy.stop()
