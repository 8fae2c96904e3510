"""Argo CD's reports through its API (a fake at the HTTP level) and the last known good
records in the config table (moto's server)."""

from __future__ import annotations

import jsonschema
import pytest

from compiler.argocd.client import ArgoCDClient, server_url
from compiler.argocd.lastgood import LastKnownGood
from compiler.errors import InputError, OutsideError, UsageError
from compiler.operations.http import HttpClient, RetryPolicy
from compiler.sources.dynamodb import DynamoDBStore
from tests.conftest import REGION
from tests.fake_argocd import FAKE_TOKEN, FakeArgoCD, swagger_validator

LOCK = {
    "cluster": "dev-k3s",
    "layers": [
        {"layer": "defaults", "version": 3},
        {"layer": "overlays/dev", "file": "overlays/dev/10-a.yaml", "sha256": "ab"},
        {"layer": "cluster/dev-k3s", "version": 2},
    ],
}


def client(argocd: FakeArgoCD, token: str = FAKE_TOKEN) -> ArgoCDClient:
    http = HttpClient(timeout=5, policy=RetryPolicy(attempts=2, backoff=0.01))
    return ArgoCDClient.from_environment(
        None, {"ARGOCD_SERVER": argocd.url, "ARGOCD_AUTH_TOKEN": token}, http
    )


def test_a_cluster_is_good_only_when_every_application_is_synced_and_healthy() -> None:
    with FakeArgoCD() as argocd:
        argocd.report(
            "dev-k3s-bootstrap", "dev-k3s", health="Healthy", sync="Synced", revision="r1"
        )
        argocd.report(
            "dev-k3s-nginx", "dev-k3s", health="Progressing", sync="Synced", revision="r1"
        )
        argocd.report(
            "test-k3s-bootstrap", "test-k3s", health="Degraded", sync="Synced", revision="r1"
        )
        api = client(argocd)
        report = api.cluster_report("dev-k3s")
        assert [a.name for a in report.apps] == ["dev-k3s-bootstrap", "dev-k3s-nginx"]
        assert report.good_revision is None and report.failing == ()
        argocd.report("dev-k3s-nginx", "dev-k3s", health="Healthy", sync="Synced", revision="r1")
        assert api.cluster_report("dev-k3s").good_revision == "r1"
        argocd.report(
            "dev-k3s-nginx",
            "dev-k3s",
            health="Healthy",
            sync="OutOfSync",
            revision="r2",
            phase="Failed",
        )
        failing = api.cluster_report("dev-k3s").failing
        assert [(a.name, a.phase, a.history) for a in failing] == [
            ("dev-k3s-nginx", "Failed", ("r1", "r2"))
        ]
        assert [a.name for a in api.cluster_report("test-k3s").failing] == ["test-k3s-bootstrap"]
        path, headers = argocd.requests[0]
        assert path == "/api/v1/applications" and headers["Authorization"] == f"Bearer {FAKE_TOKEN}"


def test_a_refused_token_is_an_outside_failure_that_never_shows_the_token() -> None:
    with FakeArgoCD() as argocd, pytest.raises(OutsideError) as raised:
        client(argocd, token="wrong-secret-token").cluster_report("dev-k3s")
    assert "ARGOCD_AUTH_TOKEN" in str(raised.value) and "wrong-secret-token" not in str(
        raised.value
    )


def test_settings_come_from_argo_cds_own_variables() -> None:
    assert (
        server_url(None, {"ARGOCD_SERVER": "argocd.example.com:443"})
        == "https://argocd.example.com:443"
    )
    assert server_url("http://127.0.0.1:8080/", {"ARGOCD_SERVER": "x"}) == "http://127.0.0.1:8080"
    with pytest.raises(UsageError, match="ARGOCD_SERVER"):
        server_url(None, {})
    with pytest.raises(UsageError, match="ARGOCD_AUTH_TOKEN"):
        ArgoCDClient.from_environment("https://a", {})


def test_the_fake_answers_only_what_the_swagger_describes() -> None:
    validator = swagger_validator("v1alpha1ApplicationList")
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"items": [{"status": {"helth": {"status": "Healthy"}}}]})
    validator.validate({"items": [{"status": {"health": {"status": "Healthy"}}}]})


def test_last_known_good_is_versioned_conditional_and_never_repeats(
    server_store: DynamoDBStore, dynamodb_server: str
) -> None:
    lkg = LastKnownGood(server_store.table, region=REGION, endpoint_url=dynamodb_server)
    with pytest.raises(InputError, match="no last known good") as raised:
        lkg.require("dev-k3s")
    assert "watch --argocd-server" in str(raised.value)
    first = lkg.record(
        "dev-k3s", "r1", LOCK, {"dev-k3s-bootstrap": "Healthy"}, "2026-01-01T00:00:00Z"
    )
    assert first is not None and first.version == 1
    assert lkg.record("dev-k3s", "r1", LOCK, {}, "2026-01-01T00:01:00Z") is None
    second = lkg.record("dev-k3s", "r2", LOCK, {}, "2026-01-01T00:02:00Z")
    assert second is not None and second.version == 2
    assert lkg.require("dev-k3s").revision == "r2"
    assert lkg.require("dev-k3s").pins() == {"defaults": 3, "cluster/dev-k3s": 2}
    assert lkg.latest("test-k3s") is None
    # Layer records are untouched: lkg# items are not clusters.
    assert "dev-k3s" not in server_store.list_clusters()
