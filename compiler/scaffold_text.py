"""The files `gitops-compiler init` writes, as text templates (see `scaffold.py`).

`{version}` is the installed compiler's version, `{envs}` the environments asked
for; the example cluster records are made per environment in `scaffold.py`.
"""

from __future__ import annotations

# Where this project lives: the hooks and the action a config repository uses.
PROJECT_REPOSITORY = "https://github.com/acme/gitops-compiler"
ACTION = "acme/gitops-compiler"
CREATED_AT = "2026-01-01T00:00:00Z"  # the example records' time: the same bytes every init

PROJECT_FILE = """\
# gitops-compiler project file: how this repository's clusters are compiled.
# The DSL: {repository}/blob/v{version}/docs/dsl.md
table: gitops-config
region: us-east-1
layers:                       # lowest precedence first
  - dynamodb: defaults
  - dynamodb: env/{{env}}
    optional: true
  - files: overlays/{{env}}
  - dynamodb: cluster/{{cluster}}
# `golden check` and the hooks read the DynamoDB layers from the snapshot in
# .gitops/snapshot (refresh it with `gitops-compiler snapshot`), never from AWS.
source: snapshot
policy:
  # The compiler's own rule sets that apply; policies/*.cue add this organisation's.
  builtin: [{rule_sets}]
argocd:
  repoURL: https://git.example.com/platform/cluster-bootstrap.git
  targetRevision: main
  project: cluster-bootstrap
  namespace: argocd
"""

OVERLAY = """\
# Overrides for the {env} clusters, reviewed in git; later files win.
namespaces:
  platform:
    limits:
      default: {{cpu: 500m, memory: 512Mi}}
      defaultRequest: {{cpu: 100m, memory: 128Mi}}
"""

OWN_POLICY = """\
// This organisation's own rules, beside the built-in rule sets that
// gitops-compiler.yaml selects (policy.builtin). A rule adds its findings under
// its id; `gitops-compiler explain-rule --all` lists the built-in ones.
package policy

// org-no-default-namespace: workloads get a namespace of their own.
_findings: "org-no-default-namespace": [
	for cname, c in clusters
	for nsname, ns in c.namespaces if nsname == "default" {{
		cluster: cname
		path:    "namespaces.\\(nsname)"
		message: "configure a namespace of the team's own, not default"
	}},
]
"""

WAIVERS = """\
# Exceptions to a rule, each with an owner, a reason and an expiry:
# - rule: rbac-sensitive-grant
#   match: {{cluster: "prod-*", namespace: monitoring, object: "roles.metrics-reader*"}}
#   reason: the metrics agent reads one named secret; ticket OPS-123
#   owner: platform@example.com
#   expires: "2027-03-31"
[]
"""

DEFAULTS = """\
versions:
  - version: 1
    created_at: "{created_at}"
    author: gitops-compiler init
    comment: example organisation defaults; replace with `gitops-compiler snapshot`
    config:
      roles:
        read-only:
          rules:
            - apiGroups: ["", apps]
              resources: [pods, services, deployments]
              verbs: [get, list, watch]
      namespaces:
        platform:
          labels: {{team: platform}}
          quotas:
            platform-quota: {{cpu: "2", memory: 4Gi}}
          defaultDeny: true
          access:
            viewers: {{clusterRole: view, groups: [auditors]}}
"""

ENVIRONMENT = """\
versions:
  - version: 1
    created_at: "{created_at}"
    author: gitops-compiler init
    comment: example {env} environment
    config:
      namespaces:
        platform:
          labels: {{environment: {env}}}
"""

CLUSTER = """\
versions:
  - version: 1
    created_at: "{created_at}"
    author: gitops-compiler init
    comment: example cluster
    cluster:
      name: example-{env}
      env: {env}
      region: eu-west-1
      server: https://example-{env}.example.internal:6443
      labels: {{}}
    config:
      namespaces:
        platform:
          annotations: {{purpose: example}}
"""

PRE_COMMIT = """\
# The compiler's verdict at `git commit`; the hooks read .gitops/snapshot (no AWS).
# The CUE policies need `cue` on PATH or in GITOPS_CUE.
repos:
  - repo: {repository}
    rev: v{version}
    hooks:
      - id: gitops-validate
      - id: gitops-golden
      - id: gitops-format
"""

GITIGNORE = """\
/out/
.gitops/local/
.gitops/*.json
__pycache__/
"""

README = """\
# Cluster configuration

Compiled by [gitops-compiler]({repository}) v{version} into the Kustomize tree
that Argo CD deploys. Environments: {env_list}.

| path | what it holds |
|---|---|
| `gitops-compiler.yaml` | the table, the layer stack, the built-in rule sets, Argo CD |
| `overlays/<env>/` | environment overrides in the DSL ({repository}/blob/v{version}/docs/dsl.md) |
| `policies/` | this organisation's own CUE rules and `waivers.yaml` |
| `golden/` | the expected compiled tree, byte for byte |
| `.gitops/snapshot/` | the DynamoDB layers as files, so hooks and pull requests need no AWS |

```sh
pip install gitops-compiler=={version}   # and a `cue` (https://cuelang.org), or GITOPS_CUE
pre-commit install                       # validate, golden check and format at each commit
gitops-compiler validate --all --source snapshot
gitops-compiler golden check             # `golden update` after an intended change
gitops-compiler snapshot                 # refresh .gitops/snapshot from the table
gitops-compiler doctor                   # what a run needs, and how to fix what is missing
```

CI (`.github/workflows/gitops-compiler.yml`): on a pull request, validate,
golden check and the diff against the base branch (in the job summary), from the
snapshot, with no cloud credentials; on the default branch, publish to the Argo
CD repository (set `vars.ARGOCD_REPO`, `vars.AWS_ROLE_ARN`, `vars.AWS_REGION`
and `secrets.ARGOCD_REPO_TOKEN`).
"""

# The CI of a config repository: checks on pull requests from the snapshot (no cloud
# credentials, so pull requests from forks work too); publish on the default branch.
WORKFLOW = """\
# gitops-compiler: checks on pull requests, publish on the default branch.
# Set up in the repository's settings (publish only):
#   vars.ARGOCD_REPO           owner/name of the Argo CD repository
#   vars.AWS_ROLE_ARN          an IAM role this workflow may assume (OIDC) to read the table
#   vars.AWS_REGION            the table's region
#   secrets.ARGOCD_REPO_TOKEN  contents: write and pull-requests: write on ARGOCD_REPO
name: gitops-compiler

on:
  pull_request:
  push:
    branches: [main]

permissions:
  contents: read

concurrency:
  group: gitops-compiler-${{{{ github.ref }}}}
  cancel-in-progress: false

jobs:
  check:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-24.04
    timeout-minutes: 20
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0 # the diff reads golden/ of the base branch
      - name: validate
        uses: {action}@v{version}
        with:
          command: validate
          compiler-version: "{version}"
      - name: golden check
        uses: {action}@v{version}
        with:
          command: golden
          compiler-version: "{version}"
      - name: diff against the base branch
        uses: {action}@v{version}
        with:
          command: diff
          compiler-version: "{version}"
          args: --against origin/${{{{ github.base_ref }}}}:golden

  publish:
    if: github.event_name == 'push' && github.ref == 'refs/heads/main'
    runs-on: ubuntu-24.04
    timeout-minutes: 30
    permissions:
      contents: read
      id-token: write # AWS credentials by OIDC, on the default branch only
{matrix}    steps:
      - uses: actions/checkout@v4
      - uses: aws-actions/configure-aws-credentials@v4
        with:
          role-to-assume: ${{{{ vars.AWS_ROLE_ARN }}}}
          aws-region: ${{{{ vars.AWS_REGION }}}}
      - name: publish
        uses: {action}@v{version}
        with:
          command: publish
          compiler-version: "{version}"
          args: >-
            --repo https://github.com/${{{{ vars.ARGOCD_REPO }}}}.git --base main --forge github
            --run-id gha${{{{ github.run_id }}}}.${{{{ github.run_attempt }}}}{shard_args}
        env:
          # From the environment only: never in flags, logs or the PR body.
          GITOPS_GIT_TOKEN: ${{{{ secrets.ARGOCD_REPO_TOKEN }}}}
          GITOPS_GITHUB_TOKEN: ${{{{ secrets.ARGOCD_REPO_TOKEN }}}}
"""

# `init --shards N`: the publish job as N jobs, one shard each (their trees together
# are the whole fleet, never overlapping: `--shard i/N` partitions by a stable hash).
MATRIX = """\
    strategy:
      fail-fast: false
      matrix:
        shard: [{shards}]
"""
