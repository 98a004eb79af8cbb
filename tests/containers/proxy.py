"""An HTTPS (CONNECT) proxy on 127.0.0.1 for pip inside ``docker build``.

Containers and builds talk only to 127.0.0.1; pip in a build reaches the package index
through this proxy (``--build-arg HTTPS_PROXY=http://127.0.0.1:PORT``, one of Docker's
predefined build arguments, so the Dockerfiles under test stay exactly as generated).
It tunnels to the index hosts only and refuses everything else.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

INDEX_HOSTS = frozenset({"pypi.org", "files.pythonhosted.org"})


class _Tunnel(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_CONNECT(self) -> None:
        host, _, port = self.path.partition(":")
        if host not in INDEX_HOSTS or port != "443":
            self.send_error(403, f"only {sorted(INDEX_HOSTS)} on 443")
            return
        try:
            upstream = socket.create_connection((host, 443), timeout=60)
        except OSError as exc:
            self.send_error(502, str(exc))
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self._pipe(self.connection, upstream)

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with b:
            while True:
                ready, _, _ = select.select([a, b], [], [], 120)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)


class IndexProxy:
    """``with IndexProxy() as proxy:`` ... ``proxy.url``."""

    def __init__(self) -> None:
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Tunnel)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def build_args(self) -> dict[str, str]:
        return {"HTTPS_PROXY": self.url, "https_proxy": self.url}

    def __enter__(self) -> IndexProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
