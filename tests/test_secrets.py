"""Credentials never leave the process: redaction, the git environment, trace ids."""

from __future__ import annotations

import base64

import pytest

from compiler import secrets
from compiler.cli import main
from compiler.errors import UsageError
from compiler.operations.trace import Run
from compiler.publishing.gitrepo import git_environment
from tests.conftest import ROOT

TOKEN = "ghp_T0kenThatMustNeverShow1234"


def test_redact_masks_registered_values_their_basic_auth_form_and_url_userinfo() -> None:
    secrets.register(TOKEN)
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    text = f"token {TOKEN}, header Basic {basic}, url https://me:pw@host/x.git"
    shown = secrets.redact(text)
    assert TOKEN not in shown and basic not in shown and "me:pw" not in shown
    assert shown == "token ***, header Basic ***, url https://***@host/x.git"


def test_short_values_are_not_registered_so_ordinary_words_stay() -> None:
    secrets.register("abc")
    assert secrets.redact("abc def") == "abc def"


def test_a_password_in_a_url_is_masked_also_where_it_shows_without_its_url() -> None:
    secrets.register_url("https://robot:pw%2Fwith-slash-0123@git.example.com/org/r.git")
    shown = secrets.redact("git said: pw/with-slash-0123 and pw%2Fwith-slash-0123")
    assert shown == "git said: *** and ***"
    basic = base64.b64encode(b"robot:pw/with-slash-0123").decode()
    assert secrets.redact(f"Authorization: Basic {basic}") == "Authorization: Basic ***"
    for harmless in ("/srv/argocd.git", "https://host/r.git", "https://u:abc@host/", "http://[x"):
        secrets.register_url(harmless)  # no password, a short one, not a URL: nothing to mask
    assert secrets.redact("abc /srv host") == "abc /srv host"


def test_git_token_travels_in_the_environment_never_on_the_command_line() -> None:
    env = git_environment({"GITOPS_GIT_TOKEN": TOKEN, "GIT_CONFIG_COUNT": "1"}, "https://h/r.git")
    assert env["GIT_CONFIG_KEY_1"] == "http.extraHeader"
    assert env["GIT_CONFIG_VALUE_1"].startswith("Authorization: Basic ")
    assert env["GIT_CONFIG_COUNT"] == "2" and env["GIT_TERMINAL_PROMPT"] == "0"
    # Not for local paths or ssh: the header would be sent nowhere useful.
    assert "GIT_CONFIG_KEY_0" not in git_environment({"GITOPS_GIT_TOKEN": TOKEN}, "/srv/r.git")


def test_a_failed_publish_never_prints_the_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GITOPS_GIT_TOKEN", TOKEN)
    url = f"https://x-access-token:{TOKEN}@127.0.0.1:9/org/argocd.git"
    code = main(["publish", "--from", str(ROOT / "golden"), "--all", "--repo", url,
                 "--forge", "none"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 3
    assert TOKEN not in captured.out + captured.err
    assert "127.0.0.1" in captured.err  # the message still says where it failed


def test_run_ids_are_checked_and_trace_ids_have_the_seed_form() -> None:
    run = Run("20261125T101500Z.ab12cd")
    assert run.trace("git") == "ms-20261125T101500Z.ab12cd-git-e40"
    assert run.trace("argocd").endswith("-argocd-e50")
    assert Run().id != Run().id
    with pytest.raises(UsageError, match="no dashes"):
        Run("a-b")
