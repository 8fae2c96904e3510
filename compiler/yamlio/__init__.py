"""The one YAML/JSON module: strict loading of layer documents, deterministic dumping.

- `loader`: YAML layers, read event by event, each value with its line; and the
  vendored YAML that is not a layer.
- `json_loader`: JSON layers, held to the same rules.
- `dumper`: the same bytes on any machine, quoted for every reader of the output.
- `tags`, `text`: what the loaders and the dumper share.

Everything else imports from here.
"""

from __future__ import annotations

from compiler.yamlio.dumper import dump_json, dump_manifest, dump_yaml
from compiler.yamlio.json_loader import load_layer_json
from compiler.yamlio.loader import LoadedDocument, load_layer_yaml, load_vendored_yaml

__all__ = [
    "LoadedDocument",
    "dump_json",
    "dump_manifest",
    "dump_yaml",
    "load_layer_json",
    "load_layer_yaml",
    "load_vendored_yaml",
]
