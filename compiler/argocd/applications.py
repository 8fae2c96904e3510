"""The Applications that the tree's ApplicationSets generate, evaluated as the controller does.

Facts from Argo CD's ApplicationSet controller (argoproj/argo-cd master, 3.6.0-dev):

- git files generator (applicationset/generators/git.go): the files matching the
  include patterns (Go `path.Match`: `*` never crosses `/`) minus the exclude
  patterns, in sorted order; each file is one object (or a list of objects); with
  `goTemplate: true` its keys stay nested and `path` is added as a map: `path`
  (the file's directory), `basename`, `filename`, `basenameNormalized`,
  `filenameNormalized`, `segments`.
- the template is rendered with text/template; with `missingkey=error` an absent
  key fails that Application (utils.go, `RenderTemplateParams`).
- `validateGeneratedApplications` refuses an Application with no name and a second
  one with the same name in one ApplicationSet ("contains applications with
  duplicate name"); across two ApplicationSets the second cannot take the controller
  reference of an Application the first owns (`SetControllerReference`: "already
  owned by another"), so one of the two never exists.
- an Application's name has the rules of a Pod's (util/argo/argo.go `IsValidAppName`:
  `NameIsDNSSubdomain`, at most 253 characters).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from compiler.argocd.gotemplate import TemplateError, render_value, sanitize_name
from compiler.errors import InputError
from compiler.layout import TreePath, read_path
from compiler.merge import MergeResult
from compiler.policy import Violation
from compiler.provenance import where_set
from compiler.yamlio import load_layer_yaml

APPSETS_DIR = "applicationsets"
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_NAME = 253

RULE_DUPLICATE = "argocd.application-duplicate"
RULE_SHARED_SERVER = "argocd.destination-shared"
RULE_NAME = "argocd.application-name"
RULE_TEMPLATE = "argocd.template-key"


@dataclass(frozen=True)
class Application:
    name: str
    project: str
    server: str
    namespace: str  # "" when the template sets none
    source: str  # what it deploys: a path of the repository, or a chart and its version
    appset: str  # the ApplicationSet that generates it
    origin: str  # the generator file it comes from, from the tree's root

    @property
    def destination(self) -> str:
        where = f", namespace {self.namespace}" if self.namespace else ""
        return f"{self.server}{where}"


@dataclass(frozen=True)
class AppFinding:
    """Something the controller would refuse or silently drop; `origin` is the file behind it."""

    rule: str
    origin: str
    message: str
    also: str = ""  # the other file of a duplicate


@dataclass
class Generated:
    applications: list[Application] = field(default_factory=list)
    findings: list[AppFinding] = field(default_factory=list)

    def by_name(self) -> dict[str, Application]:
        """The Applications that exist once the controller is done (the first of a name)."""
        out: dict[str, Application] = {}
        for app in self.applications:
            out.setdefault(app.name, app)
        return out


def path_matches(pattern: str, path: str) -> bool:
    """Go's `path.Match`: segment by segment, `*` and `?` never match `/`."""
    want, have = pattern.split("/"), path.split("/")
    return len(want) == len(have) and all(
        fnmatchcase(h, w) for w, h in zip(want, have, strict=True)
    )


def path_parameters(file: str) -> dict[str, Any]:
    """The `path` map the git files generator adds to a file's own keys (goTemplate)."""
    directory, _, filename = file.rpartition("/")
    directory = directory or "."
    basename = directory.rpartition("/")[2]
    return {
        "path": directory,
        "basename": basename,
        "filename": filename,
        "basenameNormalized": sanitize_name(basename),
        "filenameNormalized": sanitize_name(filename),
        "segments": directory.split("/"),
    }


def generate(
    tree: Mapping[str, bytes], known: Mapping[str, Sequence[Application]] | None = None
) -> Generated:
    """Every Application of every ApplicationSet in `applicationsets/`, plus what is wrong.
    `known`: by generator file, the Applications it made last time with the same
    ApplicationSets and the same file (a kept cluster's, treerecord.py): not rendered
    again."""
    out = Generated()
    known = known or {}
    for file in sorted(p for p in tree if p.startswith(f"{APPSETS_DIR}/")):
        try:
            appset = load_layer_yaml(tree[file], file).value
        except InputError as err:
            out.findings.append(AppFinding(RULE_TEMPLATE, file, f"unreadable: {err}"))
            continue
        if isinstance(appset, Mapping) and appset.get("kind") == "ApplicationSet":
            _generate_set(file, appset, tree, out, known)
    _check_names(out)
    _check_servers(out)
    return out


def _generator_files(spec: Mapping[str, Any], tree: Mapping[str, bytes]) -> Iterator[str]:
    found: set[str] = set()
    for generator in spec.get("generators", []):
        files = (generator.get("git") or {}).get("files") or []
        include = [f["path"] for f in files if not f.get("exclude")]
        exclude = [f["path"] for f in files if f.get("exclude")]
        for path in tree:
            if any(path_matches(p, path) for p in include) and not any(
                path_matches(p, path) for p in exclude
            ):
                found.add(path)
    yield from sorted(found)


def _generate_set(
    file: str,
    appset: Mapping[str, Any],
    tree: Mapping[str, bytes],
    out: Generated,
    known: Mapping[str, Sequence[Application]],
) -> None:
    name = str(appset.get("metadata", {}).get("name", file))
    spec = appset.get("spec", {})
    for origin in _generator_files(spec, tree):
        if origin in known:
            out.applications.extend(a for a in known[origin] if a.appset == name)
            continue
        try:
            loaded = json.loads(tree[origin])
        except ValueError as err:
            out.findings.append(AppFinding(RULE_TEMPLATE, origin, f"not JSON: {err}"))
            continue
        for params in loaded if isinstance(loaded, list) else [loaded]:
            if not isinstance(params, Mapping):
                continue
            params = {**params, "path": path_parameters(origin)}
            try:
                rendered = render_value(spec.get("template", {}), params)
            except TemplateError as err:
                out.findings.append(_template_finding(name, origin, err))
                continue
            out.applications.append(_application(rendered, name, origin))


def _template_finding(appset: str, origin: str, err: TemplateError) -> AppFinding:
    lacks = f"; {origin} has no field {err.missing.lstrip('.')}" if err.missing else ""
    return AppFinding(
        RULE_TEMPLATE,
        origin,
        f"ApplicationSet {appset}: {err}{lacks} (with missingkey=error the controller "
        "makes no Application from this file)",
    )


def _application(rendered: Mapping[str, Any], appset: str, origin: str) -> Application:
    spec = rendered.get("spec", {})
    source = spec.get("source", {})
    destination = spec.get("destination", {})
    if source.get("chart"):
        what = f"chart {source['chart']} {source.get('targetRevision', '')} from {source.get('repoURL', '')}"
    else:
        what = f"{source.get('repoURL', '')} path {source.get('path', '')}"
    return Application(
        name=str(rendered.get("metadata", {}).get("name", "")),
        project=str(spec.get("project", "")),
        server=str(destination.get("server", destination.get("name", ""))),
        namespace=str(destination.get("namespace", "")),
        source=what.strip(),
        appset=appset,
        origin=origin,
    )


def _check_names(out: Generated) -> None:
    seen: dict[str, Application] = {}
    for app in out.applications:
        if not app.name or len(app.name) > MAX_NAME or not _SUBDOMAIN.match(app.name):
            out.findings.append(
                AppFinding(
                    RULE_NAME,
                    app.origin,
                    f"ApplicationSet {app.appset} would name an Application {app.name!r}: "
                    f"not a DNS-1123 subdomain of at most {MAX_NAME} characters (Argo CD's "
                    "IsValidAppName); the API server refuses it",
                )
            )
            continue
        first = seen.setdefault(app.name, app)
        if first is app:
            continue
        if first.appset == app.appset:
            why = f"ApplicationSet {app.appset} would contain two Applications named"
            effect = "the controller refuses the duplicate"
        else:
            why = f"ApplicationSets {first.appset} and {app.appset} would both generate"
            effect = f"the Application stays {first.appset}'s and {app.appset}'s is never made"
        out.findings.append(
            AppFinding(
                RULE_DUPLICATE,
                app.origin,
                f"{why} {app.name!r}, from {first.origin} and {app.origin}: {effect}; "
                "rename the cluster or the add-on",
                also=first.origin,
            )
        )


def _check_servers(out: Generated) -> None:
    """Each cluster deploys to an API server of its own: two cluster records naming one
    server (a copied record, a dev cluster pointed at prod) would have two bootstrap
    Applications fight over the same objects, one cluster's policies judging them."""
    first: dict[str, tuple[str, Application]] = {}
    reported: set[str] = set()  # once a cluster: its add-ons go to the same server
    for app in out.applications:
        cluster = _cluster_of(app.origin)
        if cluster is None or cluster in reported or read_path(app.origin).kind == "addon":
            continue  # the bootstrap Application names the cluster's server; add-ons follow
        owner, seen = first.setdefault(_server_key(app.server), (cluster, app))
        if owner == cluster:
            continue
        reported.add(cluster)
        out.findings.append(
            AppFinding(
                RULE_SHARED_SERVER,
                app.origin,
                f"clusters {owner} and {cluster} both deploy to the API server "
                f"{app.server}: each would apply its own namespaces, RBAC and Calico "
                "objects to the other's, judged by its own environment's policies; give "
                "each its own server (the one whose record changed is the likely culprit)",
                also=seen.origin,
            )
        )


def _cluster_of(origin: str) -> str | None:
    parts = origin.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "clusters" else None


def _server_key(server: str) -> str:
    """A server as Argo CD tells clusters apart: scheme and host without case, the
    default port and a trailing slash dropped (`https://A.example:443/` is
    `https://a.example`)."""
    try:
        parts = urlsplit(server.strip())
        host, port = (parts.hostname or "").rstrip("."), parts.port
    except ValueError:  # no URL (a bad port, a broken IPv6 host): cluster-server-url says so
        return server.strip().lower()
    shown_port = f":{port}" if port not in (None, 443) else ""
    return f"{parts.scheme.lower()}://{host}{shown_port}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class AppChange:
    """What Argo CD will do to one Application when the tree moves from old to new."""

    action: str  # "create", "delete" or "move" (destination or source changed)
    app: Application  # the new one; the old one for "delete"
    was: Application | None = None  # for "move"

    def describe(self) -> str:
        if self.action == "move" and self.was is not None:
            return (
                f"Argo CD will move Application {self.app.name}: {self.was.destination} "
                f"→ {self.app.destination}"
            )
        return f"Argo CD will {self.action} Application {self.app.name} → {self.app.destination}"


def application_changes(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> list[AppChange]:
    """The Applications created, deleted and moved between two trees (restricted to the
    same directories, as the diff's sides are)."""
    before, after = generate(old).by_name(), generate(new).by_name()
    changes = [AppChange("create", a) for n, a in sorted(after.items()) if n not in before]
    changes += [AppChange("delete", a) for n, a in sorted(before.items()) if n not in after]
    for name in sorted(set(before) & set(after)):
        was, now = before[name], after[name]
        if (was.server, was.namespace, was.project) != (now.server, now.namespace, now.project):
            changes.append(AppChange("move", now, was))
    return changes


def application_violations(
    files: Mapping[str, bytes], merged: Mapping[str, MergeResult]
) -> list[Violation]:
    """The findings of `generate` on a compile's files, blamed on the layer that set the
    add-on or on the cluster's record (`merged` by cluster name)."""
    return blamed_findings(generate(files), merged)


def blamed_findings(generated: Generated, merged: Mapping[str, MergeResult]) -> list[Violation]:
    """`application_violations` of Applications generated already."""
    found = []
    for finding in generated.findings:
        where = read_path(finding.origin)
        origins = [finding.origin, finding.also] if finding.also else [finding.origin]
        blames = [_blame(read_path(o), merged) for o in origins]
        # An add-on is the usual culprit: its DSL path and layer first.
        blames.sort(key=lambda b: not b[0].startswith("addons."))
        path = blames[0][0] or finding.origin
        if finding.rule == RULE_SHARED_SERVER:
            path = "cluster.server"
        blame = ", ".join(dict.fromkeys(b[1] for b in blames if b[1]))
        found.append(
            Violation(where.cluster or "(fleet)", path, finding.rule, finding.message, blame)
        )
    return found


def _blame(where: TreePath, merged: Mapping[str, MergeResult]) -> tuple[str, str]:
    """The DSL path and the layer behind a generator file."""
    config = merged.get(where.cluster)
    if config is None:
        return "", ""
    if where.kind == "addon":
        return f"addons.{where.name}", where_set(config, ("addons", where.name))
    own = f"cluster/{where.cluster}"
    return "cluster.name", next((r.describe() for r in config.stack if r.layer == own), "")
