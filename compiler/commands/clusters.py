"""`clusters list`: the clusters of the table, with env, region and layer versions."""

from __future__ import annotations

import json
import sys

from compiler.errors import EXIT_OK
from compiler.inventory import format_fleet, list_fleet
from compiler.options import SourceOptions, open_project, open_store


def clusters_list_command(*, source: SourceOptions, fmt: str) -> int:
    project = open_project(source)
    entries = list_fleet(open_store(source, project), project)
    if fmt == "json":
        json.dump([e.as_record() for e in entries], sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_fleet(entries))
    return EXIT_OK
