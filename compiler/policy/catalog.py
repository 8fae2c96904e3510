"""Every rule a compile can report, in one table: the source of `docs/rules.md` and of
`gitops-compiler explain-rule`.

The rules checked in Python (guards) bring their own entries; the rules of the DSL
schema, of rendering, of the object schemas and of the CUE policies are listed here.
A test checks that every rule id the code and `policies/*.cue` can report is in the
table, and that `docs/rules.md` is what `render_reference` makes of it.
"""

from __future__ import annotations

from compiler.policy.guards.base import Rule
from compiler.policy.guards.registry import guard_rules

_K8S_RBAC = "https://kubernetes.io/docs/concepts/security/rbac-good-practices/"
_K8S_NAMES = "https://kubernetes.io/docs/concepts/overview/working-with-objects/names/"
_K8S_LABELS = "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/"
_K8S_QUOTA = "https://kubernetes.io/docs/concepts/policy/resource-quotas/"
_K8S_NETPOL = "https://kubernetes.io/docs/concepts/services-networking/network-policies/"
_CALICO_IPPOOL = "https://docs.tigera.io/calico/latest/reference/resources/ippool"
_DESIGN = "DESIGN.md, Validation"
_ARGOCD_APPSET = (
    "https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators-Git/"
)
_ARGOCD_SYNC = "https://argo-cd.readthedocs.io/en/stable/user-guide/sync-options/"

_BUILT_IN: tuple[Rule, ...] = (
    Rule(
        "schema",
        "error",
        "The merged config has the DSL's shape: known keys, types, DNS-1123 names, "
        "quantities, CIDRs (policies/cluster-config.schema.json).",
        "Anything else would render objects the API server refuses, or silently drop keys.",
        _DESIGN,
        'quotas: {dev-quota: {cpu: "4"}}   # not `quota:`, not cpu: four',
        waivable=False,
    ),
    Rule(
        "render.role-missing",
        "error",
        "A binding's `role` names a role template that `roles` defines.",
        "A RoleBinding to a Role that does not exist grants nothing and hides a typo.",
        _K8S_RBAC,
        "access: {devs: {role: dev-role, groups: [devs]}}   # with roles.dev-role defined",
        waivable=False,
    ),
    Rule(
        "render.name-conflict",
        "error",
        "Two DSL entries do not render to one Kubernetes object.",
        "The second would overwrite the first in the tree.",
        _K8S_NAMES,
        "rename one of the two entries",
        waivable=False,
    ),
    Rule(
        "render.duplicate-file",
        "error",
        "Two objects do not render to one file of the tree.",
        "The tree holds one object per file, named from its identity.",
        _K8S_NAMES,
        "rename one of the two entries",
        waivable=False,
    ),
    Rule(
        "k8s-schema",
        "error",
        "Every built-in object validates against the Kubernetes OpenAPI schema, strictly "
        "(unknown fields are errors, as kubeconform -strict).",
        "The API server would refuse the object, or drop the unknown field silently.",
        "https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation",
        "networkPolicies: {x: {podSelector: {}, policyTypes: [Ingress]}}   # fields as in k8s",
        waivable=False,
    ),
    Rule(
        "crd-schema",
        "error",
        "Every Calico and Argo CD object validates against the vendored CRD schema.",
        "The API server validates custom resources against the same schema.",
        "https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/"
        "custom-resource-definitions/#validation",
        "calicoPolicies: {x: {selector: all(), types: [Ingress]}}   # fields as in Calico",
        waivable=False,
    ),
    Rule(
        "metadata-name",
        "error",
        "Object names and namespaces are valid for their kind (DNS-1123 label or subdomain).",
        "OpenAPI schemas do not check names; the API server does.",
        _K8S_NAMES,
        "namespaces: {dev-team: {}}   # lowercase, digits and '-'",
        waivable=False,
    ),
    Rule(
        "label-syntax",
        "error",
        "Label keys are qualified names and values are valid label values.",
        "The API server refuses the object.",
        _K8S_LABELS,
        "labels: {team: backend}",
        waivable=False,
    ),
    Rule(
        "annotation-syntax",
        "error",
        "Annotation keys are qualified names.",
        "The API server refuses the object.",
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations/",
        "annotations: {example.com/owner: team-a}",
        waivable=False,
    ),
    Rule(
        "calico-ippool-cidr",
        "error",
        "An IPPool's cidr is a strictly masked CIDR outside link-local.",
        "Calico refuses it, or hands out link-local addresses.",
        _CALICO_IPPOOL,
        "ipPools: {pool: {cidr: 10.244.0.0/16}}",
        waivable=False,
    ),
    Rule(
        "calico-ippool-blocksize",
        "error",
        "An IPPool's blockSize is 20-32 (IPv4) or 116-128 (IPv6) and fits in the pool.",
        "Calico refuses the pool.",
        _CALICO_IPPOOL,
        "ipPools: {pool: {cidr: 10.244.0.0/16, blockSize: 26}}",
        waivable=False,
    ),
    Rule(
        "calico-ippool-encapsulation",
        "error",
        "An IPPool uses IPIP or VXLAN, not both, and no IPIP on IPv6.",
        "Calico refuses the pool.",
        _CALICO_IPPOOL,
        "ipPools: {pool: {cidr: 10.244.0.0/16, ipipMode: Never, vxlanMode: Always}}",
        waivable=False,
    ),
    # The CUE policies (policies/*.cue): the organisation's own rules.
    Rule(
        "rbac-no-wildcard",
        "error",
        'No "*" in a role template\'s apiGroups, resources or verbs.',
        'verbs ["*"] implies escalate, bind and impersonate; resources ["*"] reaches secrets '
        "and every subresource.",
        _K8S_RBAC + "#least-privilege",
        "verbs: [get, list, watch]",
    ),
    Rule(
        "rbac-no-escalation",
        "error",
        "No escalate, bind or impersonate verb in a role template.",
        "Each lets a subject raise its own rights.",
        _K8S_RBAC + "#escalate-verb",
        "drop the verb; grant the roles it would bind directly",
    ),
    Rule(
        "rbac-no-cluster-admin",
        "error",
        "No binding to cluster-admin.",
        "cluster-admin is every right on every object.",
        _K8S_RBAC + "#least-privilege",
        "access: {ops: {clusterRole: admin, groups: [ops]}}   # in one namespace",
        waivable=False,
    ),
    Rule(
        "rbac-no-system-roles",
        "error",
        "No binding to a system: ClusterRole (Kubernetes' components' roles).",
        "Binding one hands a user a component's rights, such as reading every secret.",
        "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#core-component-roles",
        "access: {viewers: {clusterRole: view, groups: [auditors]}}",
    ),
    Rule(
        "rbac-no-system-subjects",
        "error",
        "No binding names a system: user or group.",
        "system:masters is cluster-admin; system:authenticated is everyone.",
        "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-subjects",
        "groups: [backend-devs]",
        waivable=False,
    ),
    Rule(
        "rbac-no-secret-listing",
        "error",
        "No list or watch on secrets.",
        "list and watch return every secret's content.",
        _K8S_RBAC + "#listing-secrets",
        "resources: [secrets], resourceNames: [app-config], verbs: [get]",
    ),
    Rule(
        "rbac-no-node-proxy",
        "error",
        "No nodes/proxy in a role template.",
        "It reaches the kubelet API, and so every pod on the node.",
        _K8S_RBAC + "#nodes-proxy",
        "drop nodes/proxy",
    ),
    Rule(
        "rbac-no-cluster-scope",
        "error",
        "No nonResourceURLs in a role template.",
        "Templates render namespaced Roles, which cannot grant them: the intent is cluster-wide.",
        "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#role-and-clusterrole",
        "drop nonResourceURLs",
    ),
    Rule(
        "ns-required-labels",
        "error",
        "Every namespace has the labels team and environment.",
        "Ownership and placement are read from them (cost, alerts, policies).",
        _K8S_LABELS,
        "labels: {team: backend, environment: dev}",
    ),
    Rule(
        "ns-environment-label",
        "error",
        "A namespace's environment label names its cluster's environment.",
        "A prod label on a dev cluster misleads every selector that reads it.",
        _K8S_LABELS,
        "labels: {environment: dev}   # on a dev cluster",
    ),
    Rule(
        "prod-quota-required",
        "error",
        "In prod, every namespace has a ResourceQuota.",
        "One namespace without a quota can starve the cluster.",
        _K8S_QUOTA,
        'quotas: {default: {cpu: "8", memory: 16Gi}}',
    ),
    Rule(
        "prod-default-deny",
        "error",
        "In prod, every namespace denies traffic by default.",
        "Without it every pod is reachable from every other pod.",
        _K8S_NETPOL + "#default-deny-all-ingress-and-all-egress-traffic",
        "defaultDeny: true",
    ),
    Rule(
        "quota-ceiling",
        "error",
        "No quota over its environment's ceiling (policies/quotas.cue); `requests.cpu`, "
        "`requests.memory` and `count/pods` count as cpu, memory and pods.",
        "A quota over the ceiling promises capacity the cluster does not have; Kubernetes "
        "reads requests.cpu as cpu, so the ceiling holds under every name of the resource.",
        _K8S_QUOTA,
        'quotas: {dev-quota: {cpu: "8"}}   # dev ceiling: 16',
    ),
    Rule(
        "ippool-allowed-range",
        "error",
        "Every IP pool lies inside a range allowed for its environment.",
        "Pools outside the plan collide with other networks.",
        _CALICO_IPPOOL,
        "ipPools: {pool: {cidr: 192.168.0.0/16}}   # inside the env's allowed range",
    ),
    Rule(
        "ippool-no-overlap",
        "error",
        "No two IPv4 pools of a cluster share an address.",
        "Calico would hand the same address to two pods.",
        _CALICO_IPPOOL,
        "give the pools disjoint CIDRs",
    ),
    # Waivers (policies/waivers.yaml).
    Rule(
        "waiver-expired",
        "error",
        "A waiver is used past its expiry date.",
        "An exception has an end; past it the finding it covered stands again.",
        "docs/rules.md#waivers",
        "fix the finding, or renew the waiver with a new `expires` and a reason",
        waivable=False,
    ),
    Rule(
        "argocd.application-duplicate",
        "error",
        "No two generator files give Applications one name, within an ApplicationSet or "
        "across the two (cluster `a` + add-on `b-c` and cluster `a-b` + add-on `c`; an "
        "add-on named `bootstrap`).",
        "The ApplicationSet controller refuses a duplicate within a set, and across sets the "
        "second never takes the first's Application: one of the two is silently not deployed.",
        _ARGOCD_APPSET,
        "addons: {bootstrap: null, cluster-bootstrap: {...}}   # rename the add-on",
        waivable=False,
    ),
    Rule(
        "argocd.destination-shared",
        "error",
        "No two clusters deploy to one API server (host compared without case, the default "
        "port and a trailing slash).",
        "Both bootstrap Applications would apply their namespaces, RBAC and Calico objects "
        "to the same cluster and fight over them, each judged by its own environment's "
        "policies (a dev record pointed at prod passes dev's rules).",
        _ARGOCD_APPSET,
        "cluster: {server: https://<this cluster's own API server>}",
        waivable=False,
    ),
    Rule(
        "argocd.application-name",
        "error",
        "Every generated Application name is a DNS-1123 subdomain of at most 253 characters.",
        "Argo CD validates Application names as Pod names; the API server refuses the rest.",
        _K8S_NAMES,
        "rename the cluster or the add-on",
        waivable=False,
    ),
    Rule(
        "argocd.template-key",
        "error",
        "Every field an ApplicationSet template reads is in each generator file it matches.",
        "With `missingkey=error` the controller makes no Application from that file.",
        _ARGOCD_APPSET,
        "recompile: the compiler writes every key the templates read",
        waivable=False,
    ),
    Rule(
        "immutable.field-change",
        "error",
        "A change to a field the API server will not update in place (a binding's `roleRef`, "
        "an IP pool's `cidr` or `blockSize`, ...) is accepted in `replaceOnSync`.",
        'Argo CD\'s sync fails with "field is immutable" and the cluster stays on the old '
        "object until someone deletes it by hand.",
        _ARGOCD_SYNC,
        'replaceOnSync: {"RoleBinding/dev-team/viewers": "recreate: roleRef view -> edit"}   '
        "# or a new name",
    ),
    Rule(
        "render.replace-unknown",
        "error",
        "Every `replaceOnSync` key names an object the cluster's config renders.",
        "A stale acceptance would silently accept a future replacement of that object.",
        _ARGOCD_SYNC,
        "remove the key once the replacement is merged",
        waivable=False,
    ),
    Rule(
        "waiver-stale",
        "warning",
        "A waiver covers no finding.",
        "A waiver that covers nothing would silently cover a future finding.",
        "docs/rules.md#waivers",
        "remove the waiver from policies/waivers.yaml",
        waivable=False,
    ),
    Rule(
        "waiver-invalid",
        "error",
        "A waiver names a rule that cannot be waived, or no known rule.",
        "Some exposures are never acceptable, whoever signs for them.",
        "docs/rules.md#waivers",
        "fix the finding itself",
        waivable=False,
    ),
)


def all_rules() -> tuple[Rule, ...]:
    """Every rule, sorted by id."""
    return tuple(sorted((*_BUILT_IN, *guard_rules()), key=lambda r: r.id))


def find_rule(rule_id: str) -> Rule | None:
    return next((r for r in all_rules() if r.id == rule_id), None)
