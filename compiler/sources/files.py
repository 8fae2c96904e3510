"""Overlay files reviewed in git: `overlays/<env>/*.yaml`, one sub-layer per file."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from compiler.errors import InputError, UsageError
from compiler.model import DocPath, Layer, LayerRef
from compiler.yamlio import load_layer_json, load_layer_yaml

_SUFFIXES = (".yaml", ".yml", ".json")
MAX_OVERLAY_BYTES = 8 * 1024 * 1024  # a layer is configuration, not data: refuse before parsing


def overlay_layers(root: Path, directory: str, *, optional: bool) -> list[Layer]:
    """The files of one overlay directory, in lexical order of their names."""
    base = (root / directory).resolve()
    if not base.is_relative_to(root.resolve()):
        raise UsageError(f"overlay directory {directory!r} is outside the project {root}")
    if not base.is_dir():
        if optional:
            return []
        raise InputError(f"overlay directory {directory} does not exist")
    layers = []
    for path in sorted(base.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.suffix not in _SUFFIXES:
            continue
        rel = f"{directory.rstrip('/')}/{path.name}"
        if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
            raise InputError(f"{rel}: a link to outside the project is not read")
        layers.append(_read_overlay(path, rel, directory.rstrip("/")))
    return layers


def _read_overlay(path: Path, rel: str, layer: str) -> Layer:
    try:
        size = path.stat().st_size
        if size > MAX_OVERLAY_BYTES:
            raise InputError(f"{rel}: {size} bytes is over the {MAX_OVERLAY_BYTES} byte limit")
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{rel}: cannot read: {err.strerror}") from None
    ref = LayerRef(layer=layer, source="files", file=rel)
    lines: Mapping[DocPath, int] = {}
    key_lines: Mapping[DocPath, int] = {}
    if path.suffix == ".json":
        value = load_layer_json(data, rel)
    else:
        loaded = load_layer_yaml(data, rel)
        value, lines, key_lines = loaded.value, loaded.lines, loaded.key_lines
    if not isinstance(value, dict):
        raise InputError(f"{rel}:1: a layer document must be a map, not {type(value).__name__}")
    lock = {"file": rel, "sha256": hashlib.sha256(data).hexdigest()}
    return Layer(ref=ref, document=value, lines=lines, key_lines=key_lines, lock=lock)
