"""The RBAC grants that reach credentials or other identities, as data.

One table, read by the `rbac` guard (each entry is a rule, `rbac-sensitive-<id>`)
and by the rules reference. An entry is a set of requests as the API server
sees them: every verb of `verbs` on every `apiGroups` x `resources` pair, a
subresource written `resource/subresource` as RBAC writes it. `"*"` in `verbs`
means any verb (nodes/proxy: every verb of the kubelet's API is reachable).
Proxy subresources (pods/proxy, services/proxy) are asked with the verb of the
HTTP method, as the API server does (GET get, POST create, PUT update, ...).

`cue_rule` names the CUE rule of `policies/rbac.cue` that already refuses the
grant when it is spelled literally (compared as strings, in the fields of
`cue_literal`): the guard then stays silent rather than report it twice, and
speaks when only a wildcard reaches the grant, which the CUE rules cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RBAC_GOOD_PRACTICES = "https://kubernetes.io/docs/concepts/security/rbac-good-practices/"
RBAC_DOCS = "https://kubernetes.io/docs/reference/access-authn-authz/rbac/"
# The API server's verb for a proxy request is its HTTP method's: GET get, POST create,
# PUT update, PATCH patch, DELETE delete.
_PROXY_VERBS = ("get", "create", "update", "patch", "delete")

Field = Literal["verbs", "resources"]


@dataclass(frozen=True)
class SensitiveGrant:
    id: str
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    # True: a rule with `resourceNames` narrows the grant to those objects, which
    # is acceptable. The API server applies resourceNames to get/update/delete of
    # one object only: list, watch, create and deletecollection ignore them.
    names_narrow: bool
    what: str  # what the grant gives, as a message says it
    why: str
    reference: str
    fix: str  # the DSL of an acceptable rule
    blame: Field  # the field whose entry is at fault when no wildcard is involved
    waivable: bool = True
    cue_rule: str | None = None
    cue_literal: tuple[Field, ...] = ()


SENSITIVE_GRANTS: tuple[SensitiveGrant, ...] = (
    SensitiveGrant(
        id="secrets-get",
        verbs=("get",),
        api_groups=("",),
        resources=("secrets",),
        names_narrow=True,
        what="reads every secret of the namespace (service account tokens, TLS keys)",
        why="get on secrets without resourceNames reads any secret whose name is known "
        "or guessed, service account tokens included",
        reference=RBAC_GOOD_PRACTICES + "#secrets",
        fix="{apiGroups: [''], resources: [secrets], resourceNames: [app-config], verbs: [get]}",
        blame="verbs",
    ),
    SensitiveGrant(
        id="secrets-list",
        verbs=("list", "watch"),
        api_groups=("",),
        resources=("secrets",),
        names_narrow=False,
        what="lists or watches every secret of the namespace, contents included",
        why="list and watch return the secrets' data; the API server ignores resourceNames "
        "for them, so nothing narrows them",
        reference=RBAC_GOOD_PRACTICES + "#listing-secrets",
        fix="{apiGroups: [''], resources: [secrets], resourceNames: [app-config], verbs: [get]}",
        blame="verbs",
        cue_rule="rbac-no-secret-listing",
        cue_literal=("verbs", "resources"),
    ),
    SensitiveGrant(
        id="serviceaccount-token",
        verbs=("create",),
        api_groups=("",),
        resources=("serviceaccounts/token",),
        names_narrow=False,
        what="mints tokens for the namespace's service accounts (acts as any of them)",
        why="a TokenRequest returns a bearer token of the service account: its holder has "
        "every right the account has, wherever the account is bound",
        reference=RBAC_GOOD_PRACTICES + "#privilege-escalation-risks",
        fix="{apiGroups: [''], resources: [serviceaccounts], verbs: [get, list]}",
        blame="resources",
    ),
    SensitiveGrant(
        id="pods-exec",
        verbs=("create", "get"),  # get: kubectl exec over websockets (KEP-4006)
        api_groups=("",),
        resources=("pods/exec",),
        names_narrow=False,
        what="runs commands in the namespace's pods (and reads their mounted tokens and secrets)",
        why="exec gives a shell in a running container: its service account token, mounted "
        "secrets and network position",
        reference=RBAC_GOOD_PRACTICES + "#workload-creation",
        fix="{apiGroups: [''], resources: [pods, pods/log], verbs: [get, list]}",
        blame="resources",
    ),
    SensitiveGrant(
        id="pods-attach",
        verbs=("create", "get"),
        api_groups=("",),
        resources=("pods/attach",),
        names_narrow=False,
        what="attaches to the namespace's running containers (their stdin and output)",
        why="attach reaches a container's main process as exec does",
        reference=RBAC_GOOD_PRACTICES + "#workload-creation",
        fix="{apiGroups: [''], resources: [pods, pods/log], verbs: [get, list]}",
        blame="resources",
    ),
    SensitiveGrant(
        id="pods-portforward",
        verbs=("create", "get"),
        api_groups=("",),
        resources=("pods/portforward",),
        names_narrow=False,
        what="opens tunnels to any port of the namespace's pods, past every NetworkPolicy",
        why="port-forward goes through the kubelet, so NetworkPolicies and Calico policies "
        "never see the connection",
        reference=RBAC_DOCS + "#referring-to-resources",
        fix="{apiGroups: [''], resources: [pods, services], verbs: [get, list]}",
        blame="resources",
    ),
    SensitiveGrant(
        id="pods-ephemeralcontainers",
        verbs=("update", "patch"),
        api_groups=("",),
        resources=("pods/ephemeralcontainers",),
        names_narrow=False,
        what="adds debug containers to the namespace's running pods (exec by another name)",
        why="an ephemeral container runs a command of the author's choosing inside a running "
        "pod, with its service account token, mounted secrets and network position, as "
        "`kubectl debug` does: exec by another name",
        reference="https://kubernetes.io/docs/concepts/workloads/pods/ephemeral-containers/",
        fix="{apiGroups: [''], resources: [pods, pods/log], verbs: [get, list]}",
        blame="resources",
    ),
    SensitiveGrant(
        id="pods-proxy",
        verbs=_PROXY_VERBS,
        api_groups=("",),
        resources=("pods/proxy",),
        names_narrow=False,
        what="sends HTTP requests to any port of the namespace's pods, past every NetworkPolicy",
        why="the API server proxies the request itself, so NetworkPolicies and Calico policies "
        "never see the connection (as with port-forward)",
        reference=RBAC_DOCS + "#referring-to-resources",
        fix="{apiGroups: [''], resources: [pods, services], verbs: [get, list]}",
        blame="resources",
    ),
    SensitiveGrant(
        id="services-proxy",
        verbs=_PROXY_VERBS,
        api_groups=("",),
        resources=("services/proxy",),
        names_narrow=False,
        what="sends HTTP requests to the namespace's services, past every NetworkPolicy",
        why="the API server proxies the request to the service's pods itself, so "
        "NetworkPolicies and Calico policies never see the connection (as with port-forward)",
        reference=RBAC_DOCS + "#referring-to-resources",
        fix="{apiGroups: [''], resources: [services, endpoints], verbs: [get, list]}",
        blame="resources",
    ),
    SensitiveGrant(
        id="nodes-proxy",
        verbs=("*",),
        api_groups=("",),
        resources=("nodes/proxy",),
        names_narrow=False,
        what="reaches the kubelet API of nodes (exec in any pod of the node, unaudited)",
        why="nodes/proxy is the kubelet's whole API: even get runs commands in pods, and "
        "the API server's audit and admission never see them",
        reference=RBAC_GOOD_PRACTICES + "#access-to-proxy-subresource-of-nodes",
        fix="{apiGroups: [''], resources: [nodes, nodes/status], verbs: [get]}",
        blame="resources",
        waivable=False,
        cue_rule="rbac-no-node-proxy",
        cue_literal=("resources",),
    ),
    SensitiveGrant(
        id="escalate-bind",
        verbs=("escalate", "bind"),
        api_groups=("rbac.authorization.k8s.io",),
        resources=("roles", "clusterroles"),
        names_narrow=False,
        what="writes or binds roles with rights the subject does not have",
        why="escalate and bind switch off the API server's check that a subject cannot grant "
        "more than it holds: cluster-admin in all but name",
        reference=RBAC_DOCS + "#restrictions-on-role-creation-or-update",
        fix="{apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [get, list]}",
        blame="verbs",
        waivable=False,
        cue_rule="rbac-no-escalation",
        cue_literal=("verbs",),
    ),
    SensitiveGrant(
        id="impersonate",
        verbs=("impersonate",),
        api_groups=("", "authentication.k8s.io"),
        resources=("users", "groups", "serviceaccounts", "uids"),
        names_narrow=False,
        what="acts as other users, groups or service accounts (system:masters included)",
        why="impersonation makes every request as the impersonated identity; impersonating "
        "a group such as system:masters is cluster-admin",
        reference=RBAC_GOOD_PRACTICES + "#impersonate-verb",
        fix="{apiGroups: [''], resources: [serviceaccounts], verbs: [get, list]}",
        blame="verbs",
        waivable=False,
        cue_rule="rbac-no-escalation",
        cue_literal=("verbs",),
    ),
    SensitiveGrant(
        id="csr-approve",
        verbs=("approve",),
        api_groups=("certificates.k8s.io",),
        resources=("signers",),
        names_narrow=False,
        what="approves certificate signing requests (client certificates for any identity)",
        why="with update on certificatesigningrequests/approval, approve on signers issues "
        "client certificates for any user or group, system:masters included",
        reference=RBAC_GOOD_PRACTICES + "#csrs-and-certificate-issuing",
        fix="{apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests], "
        "verbs: [get, list]}",
        blame="verbs",
    ),
    SensitiveGrant(
        id="admission-webhooks",
        verbs=("create", "update", "patch", "delete", "deletecollection"),
        api_groups=("admissionregistration.k8s.io",),
        resources=("mutatingwebhookconfigurations", "validatingwebhookconfigurations"),
        names_narrow=False,
        what="writes admission webhooks (sees or rewrites every object sent to the API server)",
        why="a mutating webhook can inject containers into every pod and read every object "
        "created, secrets included; deleting a validating webhook removes a guard",
        reference=RBAC_GOOD_PRACTICES + "#control-admission-webhooks",
        fix="{apiGroups: [admissionregistration.k8s.io], "
        "resources: [validatingwebhookconfigurations], verbs: [get, list]}",
        blame="resources",
    ),
)

GRANTS_BY_ID = {grant.id: grant for grant in SENSITIVE_GRANTS}


def rule_id(grant: SensitiveGrant) -> str:
    return f"rbac-sensitive-{grant.id}"
