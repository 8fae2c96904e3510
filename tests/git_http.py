"""Bare repositories served over git's smart HTTP on 127.0.0.1, by the real `git http-backend`.

    with GitHttpServer(root, user="x-access-token", password=TOKEN) as server:
        url = server.url("argocd.git")      # http://127.0.0.1:<port>/argocd.git
        ...
        server.requests                     # (method, path with query, Authorization header)

Every request must carry HTTP Basic credentials `user:password` (a 401 with a
challenge otherwise, as GitHub answers), so a test sees which credentials git
really sent: the header from GITOPS_GIT_TOKEN, or the user info of the URL.
`refuse_push` answers pushes with 403 and a message (a token without write
access). The server stops when the `with` block ends.
"""

from __future__ import annotations

import base64
import subprocess
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.loopback import LoopbackServer

_BACKEND_TIMEOUT = 60.0


class GitHttpServer(LoopbackServer):
    def __init__(self, root: Path, *, user: str, password: str) -> None:
        super().__init__()
        self.root = root
        self.credentials = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.requests: list[tuple[str, str, str]] = []
        self.refuse_push: str | None = None  # a message: pushes get 403
        self._lock = threading.Lock()

    def url(self, repository: str, *, userinfo: str = "") -> str:
        assert self.port, "use the server in a with block"
        at = f"{userinfo}@" if userinfo else ""
        return f"http://{at}127.0.0.1:{self.port}/{repository}"

    def __enter__(self) -> GitHttpServer:
        self._listen(type("Handler", (_Handler,), {"served": self}))
        return self

    def record(self, method: str, path: str, authorization: str) -> None:
        with self._lock:
            self.requests.append((method, path, authorization))


class _Handler(BaseHTTPRequestHandler):
    served: GitHttpServer  # set on the subclass each server makes

    def _handle(self) -> None:
        authorization = self.headers.get("Authorization", "")
        self.served.record(self.command, self.path, authorization)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if authorization != self.served.credentials:
            self._answer(401, {"WWW-Authenticate": 'Basic realm="git"'}, b"Unauthorized\n")
            return
        url = urlsplit(self.path)
        pushing = url.path.endswith("/git-receive-pack") or "service=git-receive-pack" in url.query
        if pushing and self.served.refuse_push is not None:
            self._answer(403, {}, self.served.refuse_push.encode() + b"\n")
            return
        self._backend(url.path, url.query, body)

    def _backend(self, path: str, query: str, body: bytes) -> None:
        """One CGI call of `git http-backend` (https://git-scm.com/docs/git-http-backend)."""
        env = {
            "GIT_PROJECT_ROOT": str(self.served.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "robot",  # an authenticated user: receive-pack is allowed
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "PATH": "/usr/bin:/bin",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        done = subprocess.run(
            ["git", "http-backend"],
            input=body,
            env=env,
            capture_output=True,
            timeout=_BACKEND_TIMEOUT,
            check=False,
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers[name] = value.strip()
        self._answer(status, headers, payload)

    def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `requests`
