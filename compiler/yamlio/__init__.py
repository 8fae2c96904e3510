"""The one YAML/JSON module: strict loading of layer documents, deterministic dumping.

- `loader`: YAML layers, read event by event, each value with its line; and the
  vendored YAML that is not a layer.
- `json_loader`: JSON layers, held to the same rules.
- `dumper`: the same bytes on any machine, quoted for every reader of the output.
- `tags`, `text`: what the loaders and the dumper share.

Everything else imports from here.
"""

from __future__ import annotations

from compiler.model import DocPath
from compiler.yamlio.dumper import (
    _GO_OR_YAML12_NUMBER,
    _SINGLE_LETTER_BOOL,
    dump_json,
    dump_manifest,
    dump_yaml,
)
from compiler.yamlio.json_loader import load_layer_json
from compiler.yamlio.loader import LoadedDocument, load_layer_yaml, load_vendored_yaml
from compiler.yamlio.tags import YAML11_BOOL_WORDS as _YAML11_BOOL_WORDS

# compiler.overlay_format formats only what the dumper would write plain, so it reads
# the dumper's quoting rules; it still names DocPath `Path_`.
Path_ = DocPath

__all__ = [
    "_GO_OR_YAML12_NUMBER",
    "_SINGLE_LETTER_BOOL",
    "_YAML11_BOOL_WORDS",
    "LoadedDocument",
    "Path_",
    "dump_json",
    "dump_manifest",
    "dump_yaml",
    "load_layer_json",
    "load_layer_yaml",
    "load_vendored_yaml",
]
