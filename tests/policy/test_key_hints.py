"""An unknown DSL key names the closest known key (issue 17, item 10: `quota` for
`quotas` got no hint), in a compile's findings and in `config put`'s check."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli import main
from compiler.policy.schema import ConfigSchema
from tests.conftest import ROOT

TYPO = """\
namespaces:
  dev-team:
    quota:
      dev-quota: {cpu: "4", memory: 8Gi}
"""


def test_a_typo_of_a_key_gets_the_closest_known_key_and_its_file(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project_dir / "overlays/dev/50-typo.yaml").write_text(TYPO)
    argv = ["validate", "--project", str(project_dir), "--source", "snapshot:examples"]
    assert main([*argv, "--cluster", "dev-k3s"]) == 1
    out = capsys.readouterr().out
    assert (
        "dev-k3s: namespaces.dev-team.quota: unknown key 'quota'; did you mean `quotas`? "
        "[schema] (set by overlays/dev/50-typo.yaml:3)"
    ) in out


# The key's own line differs from its value's first line for a block map (3 and 5), an
# empty map or list written on the next line (8 and 9, 10 and 11); not for a scalar (7).
KEYS_OVER_LINES = """\
namespaces:
  dev-team:
    quota:
      # the team's quotas
      dev-quota:
        cpu: "4"
    defaultdeny: true
    limit:
      {}
    acess:
      []
"""


def test_an_unknown_key_is_named_at_its_own_line(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: the line of the first value under the key (5 for `quota`, 9 for `limit`).
    (project_dir / "overlays/dev/50-typo.yaml").write_text(KEYS_OVER_LINES)
    argv = ["validate", "--project", str(project_dir), "--source", "snapshot:examples"]
    assert main([*argv, "--cluster", "dev-k3s"]) == 1
    out = capsys.readouterr().out
    for key, known, line in [
        ("quota", "quotas", 3),
        ("defaultdeny", "defaultDeny", 7),
        ("limit", "limits", 8),
        ("acess", "access", 10),
    ]:
        assert (
            f"dev-k3s: namespaces.dev-team.{key}: unknown key {key!r}; did you mean `{known}`? "
            f"[schema] (set by overlays/dev/50-typo.yaml:{line})"
        ) in out, out


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"namespace": {}}, "namespace: unknown key 'namespace'; did you mean `namespaces`?"),
        ({"adons": {}}, "adons: unknown key 'adons'; did you mean `addons`?"),
        ({"namespaces": {"a": {"acess": {}}}}, "did you mean `access`?"),
        ({"zzz": {}}, "zzz: unknown key 'zzz'"),  # nothing close: no guess
    ],
)
def test_check_patch_hints_too(document: dict[str, object], message: str) -> None:
    [found] = ConfigSchema(ROOT / "policies").check_patch(document)
    assert found.endswith(message)


def test_key_blame_keeps_the_item_key_of_a_table_layer_and_each_files_key_line() -> None:
    from compiler.merge import merge_layers
    from compiler.model import Layer, LayerRef
    from compiler.provenance import key_blame
    from compiler.yamlio import load_layer_yaml

    table = Layer(
        ref=LayerRef("cluster/a", "dynamodb", key="cluster#a/v#0000000002", version=2),
        document={"namespaces": {"ns": {"quota": {"q": {"cpu": "1"}}}}},
    )
    text = "namespaces:\n  ns:\n    quota:\n      q:\n        cpu: '2'\n"
    loaded = load_layer_yaml(text.encode(), "overlays/dev/a.yaml")
    overlay = Layer(
        ref=LayerRef("overlays/dev", "files", file="overlays/dev/a.yaml"),
        document=loaded.value,
        lines=loaded.lines,
        key_lines=loaded.key_lines,
    )
    deleting = Layer(ref=LayerRef("env/dev", "dynamodb", key="env#dev/v#0000000001"),
                     document={"namespaces": {"ns": {"quota": None}}})  # fmt: skip
    merged = merge_layers([overlay, deleting, table])
    # Highest precedence first; the layer whose null deleted it did not write the key.
    assert key_blame(merged, ("namespaces", "ns", "quota")) == (
        "dynamodb:cluster#a/v#0000000002@2, overlays/dev/a.yaml:3"
    )
