"""A loopback TCP proxy that a test can cut (refuse and reset everything) and restore."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from fraudstream.local.ports import free_port

CHUNK_BYTES = 65536


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; :meth:`cut` makes the target look gone.

    While cut, the port refuses connections and every open connection has been reset, as
    when a broker process dies; :meth:`restore` listens again on the same port.
    """

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
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
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(OSError):
                # Linger 0: close with RST, as the kernel does for a dead process's sockets.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.shutdown(socket.SHUT_RDWR)  # wakes the pump thread blocked in recv()
            with contextlib.suppress(OSError):
                conn.close()

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
            except OSError:
                return  # closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut while we connected
                    client.close()
                    upstream.close()
                    continue
                self._connections |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK_BYTES):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                with contextlib.suppress(OSError):
                    conn.close()
            with self._lock:
                self._connections -= {source, sink}
