"""An "attacker" listener: a plain TCP server on 127.0.0.1 that must never be contacted.

Security tests point a would-be exfiltration target at it (a host in a crafted path, a subscription
URL, a redirect) and then assert ``attacker.hits == []``. Every connection is recorded with the
first bytes it sent; each gets a minimal HTTP 200 so a client that did connect does not hang.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class Attacker:
    port: int
    hits: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def attacker_listener() -> Iterator[Attacker]:
    """Run a recording listener for the duration of the block."""
    lock = threading.Lock()
    attacker = Attacker(port=0)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock: socket.socket = self.request
            sock.settimeout(2)
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            with lock:
                attacker.hits.append(data)
            with suppress(OSError):
                sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
                             b"connection: close\r\n\r\n{}")

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    with Server(("127.0.0.1", 0), Handler) as server:
        attacker.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield attacker
        finally:
            server.shutdown()
            thread.join(timeout=5)
