"""`config put`, `config history`, `config seed` and `table create`, run as a user runs them.

Through `compiler.cli.main` against moto's server on 127.0.0.1, each test with a
table of its own in a copy of the project.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
from pathlib import Path
from types import SimpleNamespace

import botocore.endpoint
import pytest

from compiler.cli import main
from compiler.sources import Pin
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.snapshot import SnapshotStore
from tests.conftest import REGION, ROOT, tree

_tables = itertools.count(1)
EXAMPLE_VERSIONS = len(SnapshotStore(ROOT / "examples").items())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Table:
    """A fresh table on the session's server, and the CLI arguments that reach it."""

    def __init__(self, project: Path, endpoint: str) -> None:
        self.name = f"cli-config-{next(_tables)}"
        self.project = project
        self.args = ["--project", str(project), "--endpoint-url", endpoint, "--table", self.name]
        self.store = DynamoDBStore(self.name, region=REGION, endpoint_url=endpoint)

    def run(self, *argv: str) -> int:
        """`main(argv + the table's source options)`."""
        return main([*argv, *self.args])

    def item_count(self) -> int:
        # Versions only: each layer also has a head item (issue 18), a copy of its latest.
        return int(
            self.store._client.scan(
                TableName=self.name,
                Select="COUNT",
                FilterExpression="begins_with(sk, :v)",
                ExpressionAttributeValues={":v": {"S": "v#"}},
            )["Count"]
        )

    def history(self, layer: str) -> list[int]:
        pk = layer.replace("/", "#", 1)
        return [v.version for v in self.store.history(pk)]


@pytest.fixture
def table(project_dir: Path, dynamodb_server: str, capsys: pytest.CaptureFixture[str]) -> Table:
    made = Table(project_dir, dynamodb_server)
    assert main(["table", "create", *made.args]) == 0
    assert f"table {made.name} created" in capsys.readouterr().out
    return made


@pytest.fixture
def seeded(table: Table, capsys: pytest.CaptureFixture[str]) -> Table:
    assert table.run("config", "seed", str(table.project / "examples")) == 0
    capsys.readouterr()
    return table


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=lambda _: None))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def history_versions(out: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s", out, re.MULTILINE)]


# -- table create and seed ---------------------------------------------------


def test_table_create_twice_says_it_exists(
    table: Table, capsys: pytest.CaptureFixture[str]
) -> None:
    assert table.run("table", "create") == 0
    assert f"table {table.name} exists already" in capsys.readouterr().out
    assert table.item_count() == 0


def test_seed_writes_every_example_version_then_nothing(
    table: Table, capsys: pytest.CaptureFixture[str]
) -> None:
    examples = str(table.project / "examples")
    assert table.run("config", "seed", examples) == 0
    out = capsys.readouterr().out
    assert f"{EXAMPLE_VERSIONS} version(s) written, 0 already there" in out
    assert table.item_count() == EXAMPLE_VERSIONS
    assert table.run("config", "seed", examples) == 0
    assert f"0 version(s) written, {EXAMPLE_VERSIONS} already there" in capsys.readouterr().out
    assert table.item_count() == EXAMPLE_VERSIONS
    assert table.history("cluster/dev-k3s") == [2, 1]


def test_seed_over_a_different_version_is_bad_input(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        table.run("config", "put", "--layer", "defaults", str(write(tmp_path / "d.yaml", "{}")))
        == 0
    )
    capsys.readouterr()
    assert table.run("config", "seed", str(table.project / "examples")) == 2
    err = capsys.readouterr().err
    assert "defaults version 1 differs" in err and "Traceback" not in err
    assert table.history("defaults") == [1]


def test_seed_from_a_missing_directory_is_bad_usage(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert table.run("config", "seed", str(tmp_path / "nope")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert table.item_count() == 0


def test_seeded_table_compiles_to_the_same_bytes_as_the_snapshot(
    seeded: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from_table, from_snapshot = tmp_path / "table", tmp_path / "snapshot"
    assert seeded.run("compile", "--all", "--out", str(from_table)) == 0, capsys.readouterr()
    argv = ["compile", "--all", "--out", str(from_snapshot), "--project", str(seeded.project)]
    assert main([*argv, "--source", "snapshot:examples"]) == 0, capsys.readouterr()
    produced, expected = tree(from_table), tree(from_snapshot)
    assert produced, "nothing compiled"
    assert sorted(produced) == sorted(expected)
    for path in expected:
        assert produced[path] == expected[path], path
    locks = [p for p in produced if p.endswith("config-lock.json")]
    assert len(locks) == 3


# -- config put ----------------------------------------------------------------

REPLICAS = "addons:\n  ingress-nginx:\n    values: {controller: {replicaCount: 3}}\n"


def test_put_writes_a_new_version_of_a_seeded_cluster(
    seeded: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = seeded.store.read("cluster#dev-k3s", Pin())
    assert before is not None and before.version == 2
    file = write(tmp_path / "dev.yaml", REPLICAS)
    argv = ["--layer", "cluster/dev-k3s", str(file), "--author", "alice", "-m", "three"]
    assert seeded.run("config", "put", *argv) == 0
    out = capsys.readouterr().out
    assert "wrote cluster/dev-k3s version 3 (cluster#dev-k3s/v#0000000003)" in out
    latest = seeded.store.read("cluster#dev-k3s", Pin())
    assert latest is not None and latest.version == 3
    assert latest.config == {
        "addons": {"ingress-nginx": {"values": {"controller": {"replicaCount": 3}}}}
    }
    assert latest.cluster == before.cluster  # the facts carry over
    assert (latest.author, latest.comment) == ("alice", "three")
    # the older versions are untouched
    assert seeded.store.read("cluster#dev-k3s", Pin(versions={"cluster/dev-k3s": 2})) == before

    # the compile picks it up, and names the version in the lock
    out_dir = tmp_path / "out"
    assert seeded.run("compile", "--cluster", "dev-k3s", "--out", str(out_dir)) == 0
    addon = json.loads((out_dir / "clusters/dev-k3s/addons/ingress-nginx.json").read_text())
    assert '"replicaCount": 3' in json.dumps(addon)
    lock = (out_dir / "clusters/dev-k3s/config-lock.json").read_text()
    assert "v#0000000003" in lock


def test_a_finding_of_a_put_names_the_file_and_line_that_set_it(
    seeded: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The version is not written yet: its values are named where they are, in the file
    (they used to be `set by dynamodb:cluster#dev-k3s/@0`)."""
    bad = (
        "namespaces:\n"
        "  dev-team:\n"
        "    access:\n"
        "      everyone: {clusterRole: cluster-admin, groups: [devs]}\n"
    )
    file = write(tmp_path / "dev-bad.yaml", bad)
    assert seeded.run("config", "put", "--layer", "cluster/dev-k3s", str(file)) == 1
    err = capsys.readouterr().err
    assert f"(set by {file}:4)" in err
    assert "/@0" not in err
    assert seeded.history("cluster/dev-k3s") == [2, 1]


def test_history_lists_versions_newest_first(
    seeded: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "dev.yaml", REPLICAS)
    for comment in ("third", "fourth"):
        assert (
            seeded.run("config", "put", "--layer", "cluster/dev-k3s", str(file), "-m", comment) == 0
        )
    capsys.readouterr()
    assert seeded.run("config", "history", "--layer", "cluster/dev-k3s") == 0
    out = capsys.readouterr().out
    assert history_versions(out) == [4, 3, 2, 1]
    lines = out.splitlines()
    assert lines[0].split() == ["VERSION", "CREATED", "AUTHOR", "COMMENT"]
    assert lines[1].rstrip().endswith("fourth") and lines[2].rstrip().endswith("third")
    assert "2026-01-06T08:00:00Z" in lines[4] and "cluster created" in lines[4]


def test_history_escapes_what_would_forge_a_row_or_drive_the_terminal(
    seeded: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Authors and comments are other people's text: a line break or an escape sequence
    in one is shown escaped, one version one line."""
    file = write(tmp_path / "dev.yaml", REPLICAS)
    forged = "line1\n      9  2030-01-01T00:00:00Z  mallory           fake row"
    argv = ["config", "put", "--layer", "cluster/dev-k3s", str(file), "-m", forged]
    assert seeded.run(*argv, "--author", "evil\x1b[31mred") == 0
    capsys.readouterr()
    assert seeded.run("config", "history", "--layer", "cluster/dev-k3s") == 0
    out = capsys.readouterr().out
    assert history_versions(out) == [3, 2, 1]
    assert "\x1b" not in out
    assert "evil\\x1b[31mred"[:16] in out
    assert "line1\\n      9  2030-01-01T00:00:00Z  mallory" in out


def test_history_of_a_layer_without_versions(
    table: Table, capsys: pytest.CaptureFixture[str]
) -> None:
    assert table.run("config", "history", "--layer", "env/prod") == 0
    assert "env/prod: no versions" in capsys.readouterr().out


def test_history_of_an_unknown_cluster_names_the_close_ones(
    seeded: Table, capsys: pytest.CaptureFixture[str]
) -> None:
    assert seeded.run("config", "history", "--layer", "cluster/dev-k3") == 2
    assert "no cluster 'dev-k3' in the config table; did you mean dev-k3s" in (
        capsys.readouterr().err
    )


def test_first_put_for_a_new_cluster_needs_its_facts(
    seeded: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "new.yaml", REPLICAS)
    assert seeded.run("config", "put", "--layer", "cluster/new-one", str(file)) == 2
    err = capsys.readouterr().err
    assert "cluster#new-one" in err and "facts" in err and "cluster:" in err
    assert "Traceback" not in err
    assert seeded.history("cluster/new-one") == []

    with_facts = write(
        tmp_path / "new-facts.yaml",
        "cluster:\n  name: new-one\n  env: dev\n  server: https://new-one.example:6443\n"
        "  region: eu-west-1\nconfig:\n" + "".join(f"  {line}\n" for line in REPLICAS.splitlines()),
    )
    assert seeded.run("config", "put", "--layer", "cluster/new-one", str(with_facts)) == 0
    assert "wrote cluster/new-one version 1" in capsys.readouterr().out
    # later versions may leave the facts out: the last ones carry over
    assert seeded.run("config", "put", "--layer", "cluster/new-one", str(file)) == 0
    latest = seeded.store.read("cluster#new-one", Pin())
    assert latest is not None and latest.version == 2
    assert latest.cluster == {
        "name": "new-one",
        "env": "dev",
        "server": "https://new-one.example:6443",
        "region": "eu-west-1",
    }
    assert "new-one" in seeded.store.list_clusters()


@pytest.mark.parametrize(
    ("facts", "field"),
    [
        ("name: new-one\n  server: https://new-one.example:6443", "'env' is a required"),
        ("name: new-one\n  env: dev\n  server: http://plain.example", "field cluster.server"),
        ("name: new-one\n  env: Dev\n  server: https://new-one.example:6443", "field cluster.env"),
        ("name: other\n  env: dev\n  server: https://new-one.example:6443", "field cluster.name"),
    ],
    ids=["no-env", "http-server", "env-upper-case", "name-not-the-layer"],
)
def test_put_with_bad_facts_is_bad_input_and_writes_nothing(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str], facts: str, field: str
) -> None:
    file = write(tmp_path / "bad.yaml", f"cluster:\n  {facts}\nconfig: {{}}\n")
    assert table.run("config", "put", "--layer", "cluster/new-one", str(file)) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err, err
    assert table.item_count() == 0


def test_facts_on_a_non_cluster_layer_are_refused(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(
        tmp_path / "env.yaml",
        "cluster: {name: dev, env: dev, server: 'https://x.example'}\nconfig: {}\n",
    )
    assert table.run("config", "put", "--layer", "env/dev", str(file)) == 2
    assert "cluster/<name> layers only" in capsys.readouterr().err
    assert table.item_count() == 0


def test_put_with_an_unknown_key_names_it_and_writes_nothing(
    seeded: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(
        tmp_path / "bad.yaml", "namespaces:\n  dev-team:\n    labels: {team: x}\n    surprise: 1\n"
    )
    assert seeded.run("config", "history", "--layer", "env/dev") == 0
    before = capsys.readouterr().out
    assert seeded.run("config", "put", "--layer", "env/dev", str(file)) == 2
    err = capsys.readouterr().err
    assert "surprise" in err and "namespaces.dev-team.surprise" in err and str(file) in err
    assert seeded.run("config", "history", "--layer", "env/dev") == 0
    assert capsys.readouterr().out == before
    assert seeded.item_count() == EXAMPLE_VERSIONS


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("namespaces:\n  dev-team:\n    quota:\n      # q\n      q1: {cpu: '1'}\n", 3),
        # a cluster record: the document under `config:`, lines counted in the file
        ("cluster: {name: dev-k3s, env: dev, server: 'https://x:6443'}\nconfig:\n"
         "  namespaces:\n    dev-team:\n      quota:\n        q1: {cpu: '1'}\n", 5),
    ],
)  # fmt: skip
def test_put_names_an_unknown_key_at_its_own_line(
    seeded: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int
) -> None:
    file = write(tmp_path / "bad.yaml", text)
    assert seeded.run("config", "put", "--layer", "cluster/dev-k3s", str(file)) == 2
    assert (
        f"{file}:{line}: namespaces.dev-team.quota: unknown key 'quota'; did you mean `quotas`?"
    ) in capsys.readouterr().err
    assert seeded.history("cluster/dev-k3s") == [2, 1]


def test_put_with_a_bad_value_type_is_refused(
    seeded: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "bad.yaml", "namespaces:\n  dev-team:\n    defaultDeny: 'yes'\n")
    assert seeded.run("config", "put", "--layer", "cluster/dev-k3s", str(file)) == 2
    assert "namespaces.dev-team.defaultDeny" in capsys.readouterr().err
    assert seeded.history("cluster/dev-k3s") == [2, 1]


def test_a_patch_may_delete_with_null(
    seeded: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "drop.yaml", "namespaces:\n  sandbox: null\n")
    # --force: the new env/dev replaces the old one, whose namespace labels the policies
    # need (the gate, tests/test_config_gate.py); the null itself passes the schema.
    assert seeded.run("config", "put", "--layer", "env/dev", str(file), "--force") == 0
    latest = seeded.store.read("env#dev", Pin())
    assert latest is not None and latest.config == {"namespaces": {"sandbox": None}}


def test_put_a_json_document(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {
        "roles": {
            "reader": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
        }
    }
    file = write(tmp_path / "defaults.json", json.dumps(document))
    assert table.run("config", "put", "--layer", "defaults", str(file)) == 0
    assert "wrote defaults version 1 (defaults/v#0000000001)" in capsys.readouterr().out
    latest = table.store.read("defaults", Pin())
    assert latest is not None and latest.config == document


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- a\n- b\n", "must be a map"),
        ("namespaces: {a: 1, a: 2}\n", "duplicate"),
        ("{", "bad.yaml:2:1"),
    ],
    ids=["list", "duplicate-key", "unparsable"],
)
def test_put_of_an_unusable_file_is_bad_input(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    file = write(tmp_path / "bad.yaml", content)
    assert table.run("config", "put", "--layer", "defaults", str(file)) == 2
    err = capsys.readouterr().err
    assert str(file) in err and message in err and "Traceback" not in err
    assert table.item_count() == 0


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_put_of_a_file_without_a_document_is_refused_and_writes_nothing(
    seeded: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    file = write(tmp_path / "empty.yaml", text)
    assert seeded.run("config", "put", "--layer", "cluster/dev-k3s", str(file)) == 2
    assert "holds no document (empty, or comments only)" in capsys.readouterr().err
    assert seeded.history("cluster/dev-k3s") == [2, 1]
    # `{}` says it: the layer is emptied on purpose (then the policies judge that).
    seeded.run("config", "put", "--layer", "env/dev", str(write(file, "{}\n")))
    assert "holds no document" not in capsys.readouterr().err


def test_put_of_a_missing_file_is_bad_usage(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert table.run("config", "put", "--layer", "defaults", str(tmp_path / "nope.yaml")) == 2
    assert "cannot read" in capsys.readouterr().err


def test_put_of_a_file_over_the_item_limit_is_refused(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "big.yaml", "# padding\n" * 42_000 + "namespaces: {}\n")
    assert table.run("config", "put", "--layer", "defaults", str(file)) == 2
    assert "at most" in capsys.readouterr().err
    assert table.item_count() == 0


@pytest.mark.parametrize(
    "layer",
    ["foo", "cluster/", "env/../x", "env/prod/x", "cluster/Dev-K3s", "defaults/x", "/etc", ""],
)
def test_bad_layer_names_are_bad_usage(
    table: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str], layer: str
) -> None:
    file = write(tmp_path / "ok.yaml", "{}\n")
    assert table.run("config", "put", "--layer", layer, str(file)) == 2
    err = capsys.readouterr().err
    assert f"layer {layer!r}" in err and "defaults, env/<env> or cluster/<name>" in err
    assert table.run("config", "history", "--layer", layer) == 2
    assert table.item_count() == 0


# -- outside failures --------------------------------------------------------


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.parametrize("command", ["history", "put", "seed", "table"])
def test_an_unreachable_endpoint_exits_3_without_a_traceback(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    argv = {
        "history": ["config", "history", "--layer", "defaults"],
        "put": ["config", "put", "--layer", "defaults", str(write(tmp_path / "d.yaml", "{}"))],
        "seed": ["config", "seed", str(project_dir / "examples")],
        "table": ["table", "create"],
    }[command]
    assert main([*argv, "--project", str(project_dir), "--endpoint-url", endpoint]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert endpoint in err and "unreachable" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["history", "put", "seed"])
def test_a_missing_table_exits_3_naming_it(
    project_dir: Path,
    dynamodb_server: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    argv = {
        "history": ["config", "history", "--layer", "env/dev"],
        "put": ["config", "put", "--layer", "defaults", str(write(tmp_path / "d.yaml", "{}"))],
        "seed": ["config", "seed", str(project_dir / "examples")],
    }[command]
    args = ["--project", str(project_dir), "--endpoint-url", dynamodb_server]
    assert main([*argv, *args, "--table", "no-such-config-table"]) == 3
    err = capsys.readouterr().err
    assert "'no-such-config-table' not found" in err and "table create" in err
    assert "Traceback" not in err


def test_a_malformed_item_in_the_table_exits_2_naming_pk_sk_and_field(
    table: Table, capsys: pytest.CaptureFixture[str]
) -> None:
    table.store._client.put_item(
        TableName=table.name,
        Item={
            "pk": {"S": "env#dev"},
            "sk": {"S": "v#0000000001"},
            "version": {"N": "1"},
            "config": {"S": "{broken"},
            "created_at": {"S": "2026-01-01T00:00:00Z"},
        },
    )
    assert table.run("config", "history", "--layer", "env/dev") == 2
    err = capsys.readouterr().err
    assert "pk='env#dev'" in err and "sk='v#0000000001'" in err and "field config" in err
    assert "Traceback" not in err
