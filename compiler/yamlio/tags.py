"""The YAML 1.1 tags and words that the strict loader and the dumper must agree on."""

from __future__ import annotations

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
MAP = "tag:yaml.org,2002:map"
SEQ = "tag:yaml.org,2002:seq"
MERGE = "tag:yaml.org,2002:merge"

# YAML 1.1 booleans besides true/false. PyYAML resolves all but y/n; Go's yaml.v2 all.
YAML11_BOOL_WORDS = frozenset({"yes", "no", "on", "off", "y", "n"})
