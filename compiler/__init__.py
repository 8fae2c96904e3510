"""gitops-compiler: layered cluster bootstrap config -> deterministic Kustomize tree."""

from __future__ import annotations

__version__ = "0.1.0"
