"""`make demo`: the main job against the embedded default, end to end.

Starts moto's DynamoDB server on loopback, creates the table, seeds it from
`examples/`, compiles every example cluster into `out/` over HTTP, prints a
summary, and stops the server.
"""

from __future__ import annotations

import sys
from pathlib import Path

from compiler.cli import main as cli_main
from compiler.localdb import local_dynamodb


def main() -> int:
    out = sys.argv[1] if len(sys.argv) > 1 else "out"
    with local_dynamodb() as endpoint:
        print(f"local DynamoDB (moto server) at {endpoint}")
        common = ["--endpoint-url", endpoint]
        for argv in (
            ["table", "create", *common],
            ["config", "seed", "examples", *common],
            ["compile", "--all", "--out", out, *common],
        ):
            print(f"$ gitops-compiler {' '.join(argv)}", flush=True)
            code = cli_main(argv)
            if code != 0:
                return code
        print(
            f"$ gitops-compiler explain --cluster prod-eks-1 namespaces.monitoring.quotas {' '.join(common)}"
        )
        code = cli_main(
            ["explain", "--cluster", "prod-eks-1", "namespaces.monitoring.quotas", *common]
        )
    print(
        f"server stopped; the tree is in {Path(out)}/ (try: .venv/bin/kubectl kustomize {out}/clusters/dev-k3s)"
    )
    print(
        "to keep working with a table that stays: .venv/bin/gitops-compiler local up "
        "(then every command here finds it; `local down` saves it)"
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
