"""The Argo CD repository as Argo CD deploys it: a cluster's `config-lock.json` at a revision,
and the Applications the ApplicationSets generate for it there.

One scratch bare repository for the life of a `watch`, fetching the base branch only
when a revision is not there yet: a good report costs one `git cat-file`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.argocd.applications import APPSETS_DIR, generate
from compiler.errors import InputError, UsageError
from compiler.layout import cluster_dir
from compiler.publishing.gitrepo import Workspace

LOCK_FILE = "config-lock.json"


@dataclass(frozen=True)
class Deployed:
    lock: Mapping[str, Any]
    applications: frozenset[str]  # the names our ApplicationSets generate for the cluster


class DeployedRepository:
    def __init__(self, url: str, base: str, *, environ: Mapping[str, str]) -> None:
        self.base = base
        self._scratch = tempfile.TemporaryDirectory(prefix="gitops-argocd-")
        self._workspace = Workspace(url, Path(self._scratch.name) / "deployed.git", environ=environ)

    def close(self) -> None:
        self._scratch.cleanup()

    def at(self, cluster: str, revision: str) -> Deployed | None:
        """The cluster's config-lock.json at `revision` and the Applications the
        ApplicationSets generate for it there; None when the revision is not on the base
        branch or has no such file (not a tree the compiler published)."""
        commit = self._commit(revision)
        if commit is None:
            return None
        directory = cluster_dir(cluster)
        path = f"{directory}/{LOCK_FILE}"
        files = self._workspace.read_files(commit, [APPSETS_DIR, directory])
        if path not in files:
            return None
        try:
            lock = json.loads(files[path])
        except ValueError:
            raise InputError(
                f"{path} at revision {revision} of {self._workspace.url} is not JSON"
            ) from None
        if not isinstance(lock, dict):
            return None
        names = {
            app.name
            for app in generate(files).by_name().values()
            if app.origin.startswith(f"{directory}/")
        }
        return Deployed(lock, frozenset(names))

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
