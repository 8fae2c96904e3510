"""The Argo CD repository as Argo CD deploys it: a cluster's `config-lock.json` at a revision.

One scratch bare repository for the life of a `watch`, fetching the base branch only
when a revision is not there yet: a good report costs one `git cat-file`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compiler.errors import InputError, UsageError
from compiler.layout import cluster_dir
from compiler.publishing.gitrepo import Workspace

LOCK_FILE = "config-lock.json"


class DeployedRepository:
    def __init__(self, url: str, base: str, *, environ: Mapping[str, str]) -> None:
        self.base = base
        self._scratch = tempfile.TemporaryDirectory(prefix="gitops-argocd-")
        self._workspace = Workspace(url, Path(self._scratch.name) / "deployed.git", environ=environ)

    def close(self) -> None:
        self._scratch.cleanup()

    def lock(self, cluster: str, revision: str) -> Mapping[str, Any] | None:
        """The cluster's config-lock.json at `revision`; None when the revision is not
        on the base branch or has no such file (not a tree the compiler published)."""
        commit = self._commit(revision)
        if commit is None:
            return None
        path = f"{cluster_dir(cluster)}/{LOCK_FILE}"
        data = self._workspace.read_files(commit, [path]).get(path)
        if data is None:
            return None
        try:
            lock = json.loads(data)
        except ValueError:
            raise InputError(
                f"{path} at revision {revision} of {self._workspace.url} is not JSON"
            ) from None
        return lock if isinstance(lock, dict) else None

    def _commit(self, revision: str) -> str | None:
        if not revision or revision.startswith("-"):
            return None
        for attempt in range(2):
            try:
                return self._workspace.resolve(revision)
            except UsageError:
                if attempt == 0:
                    self._workspace.fetch(self.base)  # new since the last fetch
        return None
