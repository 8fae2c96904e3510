"""The tree's layout read back: every path the writers produce parses to what it is."""

from __future__ import annotations

import pytest

from compiler.layout import (
    TREE_ROOTS,
    TreePath,
    cluster_dir,
    cluster_files,
    owned_directories,
    read_path,
    shared_files,
)
from compiler.model import ClusterFacts
from compiler.project import ArgoCDSettings
from compiler.render import render_cluster

FACTS = ClusterFacts(name="c1", env="dev", server="https://c1.example.internal:6443")
ADDON = {
    "chart": "ingress-nginx",
    "version": "4.11.2",
    "namespace": "ingress-nginx",
    "repoURL": "https://charts.example.com",
}
CONFIG = {
    "namespaces": {"team": {"labels": {"team": "a"}}},
    "addons": {"ingress": ADDON, "cluster": ADDON},  # an add-on named like the record file
}


def test_every_written_path_reads_back_as_what_it_is() -> None:
    rendered = render_cluster(FACTS, CONFIG)
    assert not rendered.problems
    files = cluster_files(FACTS, CONFIG, rendered.objects, [])
    objects = {f"{cluster_dir('c1')}/{r.path}" for r in rendered.objects}
    assert objects
    kinds = {}
    for path in files:
        read = read_path(path)
        assert (read.path, read.cluster, read.directory) == (path, "c1", "clusters/c1")
        kinds[path] = (read.kind, read.name)
    for path in objects:
        assert kinds.pop(path) == ("object", path.removeprefix("clusters/c1/"))
    assert kinds == {
        "clusters/c1/cluster.json": ("cluster", "c1"),
        "clusters/c1/config-lock.json": ("bookkeeping", "config-lock.json"),
        "clusters/c1/kustomization.yaml": ("bookkeeping", "kustomization.yaml"),
        "clusters/c1/addons/cluster.json": ("addon", "cluster"),
        "clusters/c1/addons/ingress.json": ("addon", "ingress"),
    }


def test_shared_files_read_back_outside_any_cluster() -> None:
    for path in shared_files(ArgoCDSettings()):
        read = read_path(path)
        assert (read.kind, read.cluster, read.directory) == ("applicationset", "", "")
        assert read.name == path.removeprefix("applicationsets/")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("README.md", TreePath("README.md", "", "other", "README.md")),
        ("clusters/c1", TreePath("clusters/c1", "", "other", "clusters/c1")),
        ("applicationsets", TreePath("applicationsets", "", "other", "applicationsets")),
        # Only the cluster directory's own files are bookkeeping or the record.
        (
            "clusters/c1/ns/a/cluster.json",
            TreePath("clusters/c1/ns/a/cluster.json", "c1", "object", "ns/a/cluster.json"),
        ),
        (
            "clusters/c1/ns/kustomization.yaml",
            TreePath("clusters/c1/ns/kustomization.yaml", "c1", "object", "ns/kustomization.yaml"),
        ),
        (
            "clusters/c1/addons/x/y.json",
            TreePath("clusters/c1/addons/x/y.json", "c1", "object", "addons/x/y.json"),
        ),
    ],
)
def test_paths_outside_the_writers_shapes(path: str, expected: TreePath) -> None:
    assert read_path(path) == expected


def test_owned_directories_of_a_selection() -> None:
    assert owned_directories(["b", "a"]) == ["applicationsets", "clusters/b", "clusters/a"]
    assert owned_directories([]) == ["applicationsets"]
    assert owned_directories(["a"], whole_fleet=True) == list(TREE_ROOTS)
