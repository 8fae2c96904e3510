"""The files `gitops-compiler init` writes, as text templates (see `scaffold.py`).

`{version}` is the installed compiler's version, `{envs}` the environments asked
for; the example cluster records are made per environment in `scaffold.py`.
"""

from __future__ import annotations

# Where this project lives: the hooks and the action a config repository uses.
PROJECT_REPOSITORY = "https://github.com/acme/gitops-compiler"
ACTION = "acme/gitops-compiler"
CUE_RELEASE = "v0.11.1"  # the cue a CI job installs when it has none (as action.yml)
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
/.cache/
/gitops-diff.md
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
{ci}"""

README_CI = {
    "github": """
CI (`.github/workflows/gitops-compiler.yml`): on a pull request, validate,
golden check and the diff against the base branch (in the job summary), from the
snapshot, with no cloud credentials; on the default branch, publish to the Argo
CD repository (set `vars.ARGOCD_REPO`, `vars.AWS_ROLE_ARN`, `vars.AWS_REGION`
and `secrets.ARGOCD_REPO_TOKEN`).
""",
    "gitlab": """
CI (`.gitlab-ci.yml`): on a merge request, validate, golden check and the diff
against the target branch (the job's artifact `gitops-diff.md`), from the
snapshot, with no cloud credentials; on the default branch, publish to the Argo
CD repository as a merge request (set the CI/CD variables `ARGOCD_REPO`,
`GITLAB_TOKEN` and `AWS_ROLE_ARN`, as the file's header says).
""",
    "none": "",
}

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

# The CI of a config repository on GitLab: the same jobs as WORKFLOW. GitLab has no
# composite actions, so `before_script` installs the compiler and cue. Keywords as
# https://docs.gitlab.com/ci/yaml/ documents them; `$$` is GitLab's literal `$`, unused.
GITLAB_CI = """\
# gitops-compiler: checks on merge requests, publish on the default branch.
# Set up in Settings > CI/CD > Variables (publish only; mask and protect the tokens):
#   ARGOCD_REPO       the Argo CD repository's git URL, e.g.
#                     https://gitlab.example.com/platform/argocd-config.git
#   ARGOCD_PROJECT    its GitLab project path (GROUP/SUB/NAME), only when the URL
#                     does not show it (a mirror, a local path)
#   ARGOCD_BASE       its base branch (default: main)
#   GITLAB_TOKEN      a project access token of the Argo CD project with the `api`
#                     scope and the Developer role: opens the merge request (the job
#                     token, CI_JOB_TOKEN, may not call the merge requests API)
#   GITOPS_GIT_TOKEN  a token that may push to ARGOCD_REPO (default: GITLAB_TOKEN)
#   AWS_ROLE_ARN      an IAM role that trusts this project's ID tokens (OIDC), to read
#                     the table; or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
stages: [check, publish]

variables:
  GITOPS_COMPILER_VERSION: "{version}"
  CUE_VERSION: {cue_version}
  PIP_CACHE_DIR: $CI_PROJECT_DIR/.cache/pip

default:
  image: python:3.11
  cache:
    key: gitops-compiler-{version}
    paths: [.cache/]
  before_script:
    - python -m pip install --disable-pip-version-check --quiet "gitops-compiler==$GITOPS_COMPILER_VERSION"
    - |
      # cue: GITOPS_CUE or one on PATH, else the release (kept in the cache)
      if [ -z "${{GITOPS_CUE:-}}" ] && ! command -v cue >/dev/null; then
        dir="$CI_PROJECT_DIR/.cache/cue-$CUE_VERSION"
        if [ ! -x "$dir/cue" ]; then
          case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
          mkdir -p "$dir"
          curl -fsSL "https://github.com/cue-lang/cue/releases/download/$CUE_VERSION/cue_${{CUE_VERSION}}_linux_$arch.tar.gz" \\
            | tar -xz -C "$dir" cue
        fi
        export GITOPS_CUE="$dir/cue"
      fi

# Merge requests: from the snapshot, with no cloud credentials.
.merge-request:
  stage: check
  interruptible: true
  timeout: 20 minutes
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"

validate:
  extends: .merge-request
  script:
    - gitops-compiler validate --all --source snapshot

golden:
  extends: .merge-request
  script:
    - gitops-compiler golden check

diff:
  extends: .merge-request
  script:
    # A merge request pipeline fetches its own branch only; the diff reads the target's golden/.
    - git fetch --quiet origin "+refs/heads/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME:refs/remotes/origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
    - gitops-compiler diff --all --source snapshot --format markdown --against "origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME:golden" | tee gitops-diff.md
  artifacts:
    expose_as: gitops-compiler diff
    paths: [gitops-diff.md]
    when: always
    expire_in: 30 days

publish:
  stage: publish
  interruptible: false
  timeout: 30 minutes
  resource_group: gitops-compiler-publish # one publish at a time, in pipeline order
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
{parallel}  id_tokens:
    AWS_ID_TOKEN:
      aud: sts.amazonaws.com
  script:
    - |
      # boto3 assumes AWS_ROLE_ARN with the job's ID token (AWS_WEB_IDENTITY_TOKEN_FILE)
      if [ -n "${{AWS_ROLE_ARN:-}}" ]; then
        export AWS_WEB_IDENTITY_TOKEN_FILE="$(mktemp)"
        printf '%s' "$AWS_ID_TOKEN" > "$AWS_WEB_IDENTITY_TOKEN_FILE"
      fi
    - export GITOPS_GIT_TOKEN="${{GITOPS_GIT_TOKEN:-${{GITLAB_TOKEN:-}}}}"
    - gitops-compiler publish --all --repo "${{ARGOCD_REPO:?set ARGOCD_REPO in Settings > CI/CD > Variables}}" --base "${{ARGOCD_BASE:-main}}" --forge gitlab ${{ARGOCD_PROJECT:+--forge-repo "$ARGOCD_PROJECT"}} --run-id "gl$CI_PIPELINE_ID.$CI_JOB_ID"{shard_args}
"""

# `init --ci gitlab --shards N`: the publish job as N jobs, `--shard i/N` each.
GITLAB_PARALLEL = """\
  parallel: {shards}
"""
