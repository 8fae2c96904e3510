"""An internal error's details, in a file of its own: the user sees one line and its path."""

from __future__ import annotations

import os
import sys
import tempfile
import traceback

from compiler import __version__
from compiler.secrets import redact


def write_crash_log() -> str:
    """The exception being handled, with the version and command line; secrets redacted."""
    handle, path = tempfile.mkstemp(prefix="gitops-compiler-crash-", suffix=".log")
    with os.fdopen(handle, "w") as stream:
        stream.write(redact(f"gitops-compiler {__version__}\nargv: {sys.argv}\n\n"))
        stream.write(redact(traceback.format_exc()))
    return path
