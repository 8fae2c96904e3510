"""Argo CD's API server, read-only: each cluster's Applications and what Argo CD reports.

`ARGOCD_SERVER` and `ARGOCD_AUTH_TOKEN` are Argo CD's own variable names (its CLI
reads them); `--argocd-server` overrides the first. The server may be given as
`host:port`, as the CLI takes it, or as a URL. The token is sent as a bearer token and
never appears in a message. The Application is read as Argo CD's swagger
(`assets/swagger.json`, `v1alpha1Application`) describes it: `status.health.status`,
`status.sync.status` and `revision`, `status.operationState.phase`, `status.history`.
All HTTP goes through the shared retry loop (`compiler.operations.http`).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compiler.errors import OutsideError, UsageError
from compiler.operations.http import HttpClient, Request, RetryPolicy, status_line
from compiler.render.argocd import LABEL_PREFIX

SERVER_ENV = "ARGOCD_SERVER"
TOKEN_ENV = "ARGOCD_AUTH_TOKEN"
FAILED_PHASES = frozenset({"Failed", "Error"})  # operationState.phase of a failed sync


@dataclass(frozen=True)
class AppStatus:
    """One Application as Argo CD reports it."""

    name: str
    health: str  # Healthy, Progressing, Degraded, Suspended, Missing, Unknown
    sync: str  # Synced, OutOfSync, Unknown
    revision: str  # the git revision of the last comparison
    phase: str  # of the last sync operation: Running, Succeeded, Failed, Error, Terminating
    history: tuple[str, ...]  # revisions deployed, oldest first
    # An add-on's Application deploys a Helm chart: its revision is the chart's version,
    # not a commit of the Argo CD repository (our ApplicationSet labels it `addon`).
    chart: bool = False

    @property
    def good(self) -> bool:
        return self.health == "Healthy" and self.sync == "Synced"

    @property
    def failing(self) -> bool:
        return self.health == "Degraded" or self.phase in FAILED_PHASES


def app_status(item: Mapping[str, Any]) -> AppStatus:
    status = item.get("status") or {}
    metadata = item.get("metadata") or {}
    source = (item.get("spec") or {}).get("source") or {}
    return AppStatus(
        name=str(metadata.get("name", "")),
        health=str((status.get("health") or {}).get("status", "Unknown")),
        sync=str((status.get("sync") or {}).get("status", "Unknown")),
        revision=str((status.get("sync") or {}).get("revision", "")),
        phase=str((status.get("operationState") or {}).get("phase", "")),
        history=tuple(str(h.get("revision", "")) for h in status.get("history") or []),
        chart=f"{LABEL_PREFIX}/addon" in (metadata.get("labels") or {}) or "chart" in source,
    )


@dataclass(frozen=True)
class ClusterReport:
    """All of one cluster's Applications at one poll."""

    cluster: str
    apps: tuple[AppStatus, ...]

    @property
    def revision(self) -> str | None:
        """The Argo CD repository's commit the cluster is at: its git Applications' one
        revision (add-ons report their chart's version); None while they disagree."""
        revisions = {a.revision for a in self.apps if not a.chart}
        return revisions.pop() if len(revisions) == 1 else None

    @property
    def good_revision(self) -> str | None:
        """The revision every Application is Synced and Healthy at; None otherwise."""
        if self.apps and all(a.good for a in self.apps):
            return self.revision
        return None

    @property
    def failing(self) -> tuple[AppStatus, ...]:
        return tuple(a for a in self.apps if a.failing)


def server_url(flag: str | None, environ: Mapping[str, str]) -> str:
    server = flag or environ.get(SERVER_ENV, "")
    if not server:
        raise UsageError(f"name Argo CD's API server: --argocd-server URL or {SERVER_ENV}")
    if "://" not in server:
        server = f"https://{server}"  # the CLI's form, host:port, is served over TLS
    parsed = urllib.parse.urlsplit(server)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise UsageError(f"--argocd-server / {SERVER_ENV}: not an http(s) URL or host:port")
    return server.rstrip("/")


class ArgoCDClient:
    def __init__(self, server: str, token: str, http: HttpClient | None = None) -> None:
        self.server = server
        self._token = token
        self._http = http or HttpClient(policy=RetryPolicy(attempts=4, backoff=1.0))

    @classmethod
    def from_environment(
        cls, flag: str | None, environ: Mapping[str, str], http: HttpClient | None = None
    ) -> ArgoCDClient:
        token = environ.get(TOKEN_ENV, "")
        if not token:
            raise UsageError(
                f"set {TOKEN_ENV} to an Argo CD API token (a project role's, read-only)"
            )
        return cls(server_url(flag, environ), token, http)

    def close(self) -> None:
        self._http.close()

    def cluster_report(self, cluster: str) -> ClusterReport:
        """The Applications the compiler's ApplicationSets made for `cluster` (by our label)."""
        selector = f"{LABEL_PREFIX}/cluster={cluster}"
        items = self._get("/api/v1/applications", {"selector": selector}).get("items") or []
        return ClusterReport(cluster, tuple(sorted((app_status(i) for i in items), key=_name)))

    def _get(self, path: str, query: Mapping[str, str]) -> Mapping[str, Any]:
        url = f"{self.server}{path}?{urllib.parse.urlencode(query)}"
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        what = f"Argo CD {self.server}: GET {path}"
        response = self._http.request(
            Request("GET", url, headers), describe=lambda r: f"{what}: {status_line(r)}"
        )
        if response.status in (401, 403):
            raise OutsideError(
                f"{what}: {response.status}: the token in {TOKEN_ENV} is not accepted "
                "(expired, or its role may not get applications)"
            )
        if response.status != 200:
            raise OutsideError(f"{what}: {status_line(response)}")
        try:
            answer = json.loads(response.data)
        except ValueError:
            raise OutsideError(f"{what}: the answer is not JSON") from None
        if not isinstance(answer, Mapping):
            raise OutsideError(f"{what}: the answer is not an object")
        return answer


def _name(app: AppStatus) -> str:
    return app.name


def describe_failures(apps: Sequence[AppStatus]) -> str:
    return ", ".join(
        f"{a.name} {a.health}/{a.sync}" + (f" (sync {a.phase})" if a.phase in FAILED_PHASES else "")
        for a in apps
    )
