"""`--shard i/n`: shards never overlap, and their union is the unsharded output, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.errors import UsageError
from compiler.shard import Shard
from tests.conftest import ROOT, tree
from tests.gitrepos import commit_files, files_at, has_branch

ARGS = ["--project", str(ROOT), "--source", "snapshot:examples"]


def test_shards_partition_any_fleet() -> None:
    names = [f"cluster-{n}" for n in range(1000)]
    for count in (1, 2, 3, 7):
        shards = [Shard(i, count).select(names) for i in range(1, count + 1)]
        assert sorted(c for shard in shards for c in shard) == sorted(names)  # union, no overlap
        if count > 1:
            assert all(len(s) > 1000 / count / 2 for s in shards)  # and roughly even
    # Stable: the answer depends on the name alone, not on order or process.
    assert Shard(2, 3).select(reversed(names)) == list(reversed(Shard(2, 3).select(names)))


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a/b", "1", "-1/2"])
def test_bad_shard_specs_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        Shard.parse(text)


@pytest.mark.parametrize("count", [2, 3])
def test_union_of_shards_equals_the_whole_byte_for_byte(
    count: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = tmp_path / "whole"
    assert main(["compile", "--all", "--out", str(whole), *ARGS]) == 0
    union: dict[str, bytes] = {}
    together = tmp_path / "together"  # every shard into one tree, one after another
    for index in range(1, count + 1):
        alone = tmp_path / f"shard-{index}"
        spec = f"{index}/{count}"
        assert main(["compile", "--all", "--shard", spec, "--out", str(alone), *ARGS]) == 0
        assert main(["compile", "--all", "--shard", spec, "--out", str(together), *ARGS]) == 0
        files = tree(alone)
        clusters = {p for p in files if p.startswith("clusters/")}
        assert not clusters & set(union), "two shards wrote the same file"
        union.update(files)
    assert union == tree(whole) == tree(together)


def test_cli_rejects_a_bad_shard_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["compile", "--all", "--shard", "3/2", *ARGS])
    assert exited.value.code == 2
    assert "use i/n" in capsys.readouterr().err


def test_a_cluster_deleted_from_the_table_is_removed_by_its_shard(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shards' branches together equal the unsharded publish, deletions included
    (issue 16): the shard a deleted cluster hashes to removes its directory."""
    golden = tree(ROOT / "golden")
    commit_files(remote, "main", golden, "published before", author="Alice")
    gone = "dev-k3s"  # its shard (2 of 2) keeps prod-eks-1: a shard never publishes none
    after = tmp_path / "after"
    for rel, data in golden.items():
        if not rel.startswith(f"clusters/{gone}/"):
            (after / rel).parent.mkdir(parents=True, exist_ok=True)
            (after / rel).write_bytes(data)
    common = ["publish", "--from", str(after), "--all", "--repo", str(remote), "--forge", "none"]
    branches = []
    for index in (1, 2):
        assert main([*common, "--shard", f"{index}/2"]) == 0
        branches.append(f"gitops-compiler/main/shard-{index}-of-2")
    owner = next(b for b, i in zip(branches, (1, 2), strict=True) if Shard(i, 2).holds(gone))
    assert has_branch(remote, owner), "the deletion was never published"
    assert not files_at(remote, owner, f"clusters/{gone}")
    assert files_at(remote, owner, "applicationsets") == files_at(remote, "main", "applicationsets")
    # Merged together, the shards' branches are the unsharded tree.
    merged = files_at(remote, "main")
    for branch in branches:
        if has_branch(remote, branch):
            on_branch = files_at(remote, branch)
            merged = {k: v for k, v in merged.items() if k in on_branch} | on_branch
    assert {k: v for k, v in merged.items() if k.startswith("clusters/")} == {
        k: v for k, v in tree(after).items() if k.startswith("clusters/")
    }


def test_a_shard_is_refused_where_the_whole_fleet_breaks_a_fleet_check(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new cluster on dev-k3s's API server, hashed to the other shard: its shard alone
    passes, the tree its branch would hold does not (a security review found the
    sharded publish skipping the fleet-wide checks)."""
    golden = tree(ROOT / "golden")
    commit_files(remote, "main", golden, "published before", author="Alice")
    other = next(n for n in (f"copy-{i}" for i in range(100)) if Shard(1, 2).holds(n))
    assert not Shard(1, 2).holds("dev-k3s")
    after = tmp_path / "after"
    for rel, data in golden.items():
        (after / rel).parent.mkdir(parents=True, exist_ok=True)
        (after / rel).write_bytes(data)
    facts = (after / "clusters/dev-k3s/cluster.json").read_text()
    (after / f"clusters/{other}").mkdir()
    (after / f"clusters/{other}/cluster.json").write_text(facts.replace("dev-k3s", other, 1))
    common = ["publish", "--from", str(after), "--all", "--repo", str(remote), "--forge", "none"]
    assert main([*common, "--shard", "1/2"]) == 1
    err = capsys.readouterr().err
    assert "shard 1/2: with the other clusters in clusters/, the tree would break" in err
    assert f"clusters {other} and dev-k3s both deploy to the API server" in err
    assert "[argocd.destination-shared]" in err
    assert not has_branch(remote, "gitops-compiler/main/shard-1-of-2")


def test_a_publish_of_named_clusters_is_refused_where_the_fleet_breaks_a_fleet_check(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """dev-k3s pointed at prod-eks-1's API server: `publish --cluster dev-k3s` (as a
    watch, a rollback or a bootstrap publishes) sees the rest of the fleet in git."""
    golden = tree(ROOT / "golden")
    commit_files(remote, "main", golden, "published before", author="Alice")
    after = tmp_path / "after"
    for rel, data in golden.items():
        (after / rel).parent.mkdir(parents=True, exist_ok=True)
        (after / rel).write_bytes(data)
    prod = json.loads((after / "clusters/prod-eks-1/cluster.json").read_text())
    dev = after / "clusters/dev-k3s/cluster.json"
    dev.write_text(json.dumps({**json.loads(dev.read_text()), "server": prod["server"]}))
    argv = ["publish", "--from", str(after), "--cluster", "dev-k3s", "--repo", str(remote)]
    assert main([*argv, "--forge", "none"]) == 1
    err = capsys.readouterr().err
    assert "dev-k3s: with the other clusters in clusters/, the tree would break" in err
    assert "clusters dev-k3s and prod-eks-1 both deploy to the API server" in err
    assert not has_branch(remote, "gitops-compiler/main/cluster-dev-k3s")


def test_publish_all_as_of_is_refused_before_it_removes_newer_clusters(
    remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["publish", "--all", "--as-of", "2026-01-06T09:00:00Z", *ARGS]
    assert main([*argv, "--repo", str(remote), "--forge", "none"]) == 2
    assert "would remove from the Argo CD repository every cluster" in capsys.readouterr().err
