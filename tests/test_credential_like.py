"""`secrets.credential_like`: the one detector of credential-looking values (the
secrets-in-config guard, and masking later). Fake tokens are built at run time, so
this file holds no string a secret scanner would flag."""

from __future__ import annotations

import base64
import hashlib
import random
import string
import uuid

import pytest

from compiler.secrets import ENTROPY_MIN_LENGTH, HIGH_ENTROPY, credential_like

_rng = random.Random(15)  # fixed: the same "random" keys on every run
ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


PEM = (
    "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow" + rand(60) + "\n-----END RSA PRIVATE KEY-----\n"
)
JWT_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
JWT_CLAIMS = base64.urlsafe_b64encode(b'{"sub":"1234567890","name":"x"}').decode().rstrip("=")

CREDENTIALS = [
    ("gh" + "p_" + rand(36), "GitHub token"),
    ("gh" + "o_" + rand(36), "GitHub token"),
    ("github" + "_pat_" + rand(22) + "_" + rand(59), "fine-grained"),
    ("gl" + "pat-" + rand(20), "GitLab"),
    ("xo" + "xb-" + "1234567890-" + rand(24), "Slack"),
    ("sk" + "_live_" + rand(24), "Stripe"),
    ("AK" + "IA" + rand(16, string.ascii_uppercase + string.digits), "AWS access key id"),
    ("AS" + "IA" + rand(16, string.ascii_uppercase + string.digits), "AWS access key id"),
    (PEM, "PEM private key"),
    ("-----BEGIN " + "OPENSSH PRIVATE KEY-----", "PEM private key"),
    ("-----BEGIN " + "PRIVATE KEY-----", "PEM private key"),
    (base64.b64encode(PEM.encode()).decode(), "base64-encoded PEM private key"),
    (f"{JWT_HEADER}.{JWT_CLAIMS}.{rand(43, ALNUM + '-_')}", "JSON Web Token"),
    ("Bearer gh" + "p_" + rand(36), "GitHub token"),  # inside a longer value
    (rand(40, ALNUM + "+/"), "high-entropy"),  # an AWS secret access key's shape
    (rand(32), "high-entropy"),
    ("postgres://app:" + rand(32) + "@db:5432/app", "high-entropy"),
]


@pytest.mark.parametrize(("value", "kind"), CREDENTIALS, ids=[k for _, k in CREDENTIALS])
def test_credentials_are_recognised_and_named(value: str, kind: str) -> None:
    found = credential_like(value)
    assert found is not None
    assert kind in found or (kind == "high-entropy" and found == HIGH_ENTROPY)
    assert value not in found


ORDINARY = [
    "registry.example.com/team/app:1.2.3",
    "nginx@sha256:" + hashlib.sha256(b"image").hexdigest(),
    hashlib.sha512(b"x").hexdigest(),
    str(uuid.UUID(int=_rng.getrandbits(128))),
    base64.b64encode(b"hello world").decode(),
    base64.b64encode(b"kubernetes-admin").decode(),
    base64.b64encode(b"postgres").decode(),
    "ingress-nginx-controller-admission.ingress-nginx.svc.cluster.local",
    "my-very-long-hostname-for-cluster.eu-west-1.elb.amazonaws.com",
    "arn:aws:iam::123456789012:role/external-dns-for-the-prod-cluster",
    "quay.io/prometheus-operator/prometheus-config-reloader:v0.75.2",
    "ContainerRegistryCredentialsProviderForKubernetes",
    "/var/lib/kubelet/plugins/kubernetes.io/csi/pv/volumes-0123",
    "-----BEGIN CERTIFICATE-----\nMIIC" + rand(64) + "\n-----END CERTIFICATE-----\n",
    base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIC" + rand(64).encode()).decode(),
    "team-payments-oncall@example.com",
    "the quick brown fox jumps over the lazy dog",
    "true",
    "",
    "ghp_example",  # a prefix alone is no token
]


@pytest.mark.parametrize("value", ORDINARY)
def test_ordinary_values_are_not_credentials(value: str) -> None:
    assert credential_like(value) is None


def test_the_entropy_threshold_catches_most_random_keys_of_the_minimum_length() -> None:
    keys = [rand(ENTROPY_MIN_LENGTH) for _ in range(500)]
    caught = sum(credential_like(k) == HIGH_ENTROPY for k in keys)
    assert caught >= 0.9 * len(keys)
