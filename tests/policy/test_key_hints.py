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
        "[schema] (set by overlays/dev/50-typo.yaml:4)"
    ) in out


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
