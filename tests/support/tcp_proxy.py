"""A loopback TCP proxy that a test can cut (refuse and reset everything) and restore.

Each connection is pumped by two threads, one per direction. A socket is closed only after
both have stopped: on Linux, closing a socket while another thread is blocked in ``recv()``
on it neither wakes that thread nor sends anything to the peer (the file descriptor goes, the
connection stays). Threads are woken with ``shutdown()`` instead.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

from fraudstream.local.ports import free_port

CHUNK_BYTES = 65536
#: SO_LINGER on, 0 s: ``close()`` sends RST, as the kernel does for a dead process's sockets.
LINGER_RESET = struct.pack("ii", 1, 0)


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; :meth:`cut` makes the target look gone.

    While cut, the port refuses connections and every open connection has been reset, as
    when a broker process dies; :meth:`restore` listens again on the same port.
    :meth:`silence` instead leaves the open connections hanging without a word, as when the
    broker's host vanished or a network path dropped them.
    """

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._links: set[_Link] = set()
        self._lock = threading.Lock()

    @property
    def bootstrap(self) -> str:
        """``host:port`` of the proxy for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        """Listen and forward in background threads."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        with self._lock:
            listener, self._listener = self._listener, None
            links, self._links = self._links, set()
        if listener is not None:
            # Stops listening and wakes the accept thread, which closes it. A plain close()
            # would leave it listening until the next connection came.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
        for link in links:
            link.reset()

    def silence(self) -> None:
        """From now on, forward nothing on the open connections and close none of them.

        What a client sends is swallowed and nothing comes back: no answer, no FIN, no
        reset, as when the broker's host died without closing its connections or a NAT or
        load balancer forgot them. New connections are forwarded as before.
        """
        with self._lock:
            links = set(self._links)
        for link in links:
            link.silent = True

    def restore(self) -> None:
        """Accept and forward again, on the same port."""
        self.start()

    def stop(self) -> None:
        """Cut for good."""
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # shut down by cut()
                listener.close()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            link = _Link(client, upstream, self._forget)
            with self._lock:
                cut_meanwhile = self._listener is not listener
                if not cut_meanwhile:
                    self._links.add(link)
            if cut_meanwhile:
                link.reset()
            link.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)


class _Link:
    """A client connection and its upstream connection, pumped both ways."""

    def __init__(
        self, client: socket.socket, upstream: socket.socket, on_closed: Callable[[_Link], None]
    ) -> None:
        self.sockets = (client, upstream)
        self.silent = False
        self._on_closed = on_closed
        self._lock = threading.Lock()
        self._pumping = 2
        self._closed = False

    def start(self) -> None:
        client, upstream = self.sockets
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def reset(self) -> None:
        """Reset both connections: the pumps wake up and the last one closes with RST."""
        with self._lock:
            if self._closed:
                return
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                    sock.shutdown(socket.SHUT_RDWR)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK_BYTES):
                if not self.silent:
                    sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            # One side is gone: end the other too (this wakes the other pump).
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._pumping -= 1
            if self._pumping:
                return
            self._closed = True
            for sock in self.sockets:
                sock.close()
        self._on_closed(self)
