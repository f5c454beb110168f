"""Serving the API beside the control loop: uvicorn in a background thread.

The socket is bound here, before the loop starts, so a port in use or an address that
does not exist is an error naming it at once, not a log line from a thread.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from forethought.core.errors import ForethoughtError
from forethought.service.state import INSTALL_SERVICE

STARTUP_SECONDS = 10.0


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` (on 127.0.0.1) as a (host, port) pair."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host if sep and host else "127.0.0.1"  # ":9187" as "9187"
    host = host.removeprefix("[").removesuffix("]")  # [::1]:9187
    try:
        port = int(port_text)
    except ValueError:
        raise ForethoughtError(f"{text!r}: write HOST:PORT or PORT, as in 127.0.0.1:9187") from None
    if not 0 <= port <= 65535 or not host:
        raise ForethoughtError(f"{text!r}: the port must be in 0..65535")
    return host, port


@dataclass
class Serving:
    """A server running in a background thread; ``port`` is the one bound (even for 0)."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread
    _socket: socket.socket

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_SECONDS)
        self._socket.close()


def serve_in_background(app: Any, host: str, port: int) -> Serving:
    """Bind ``host:port`` and serve ``app`` from a daemon thread until :meth:`Serving.stop`."""
    try:
        import uvicorn
    except ImportError:
        raise ForethoughtError(f"serving the API needs uvicorn: {INSTALL_SERVICE}") from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ForethoughtError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    bound = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="forethought-api", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise ForethoughtError(f"the API server on {host}:{bound} did not start")
        time.sleep(0.01)
    return Serving(host, bound, server, thread, sock)
