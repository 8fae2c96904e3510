"""One schema, two validators: a compiled one for speed, jsonschema for the detail.

fastjsonschema answers the common case, a valid document, at a fraction of
jsonschema's cost, but it stops at the first error and says little about it;
only a document that fails is run through jsonschema, for its complete and
located errors. Compiling has a cost of its own (30 ms to 0.15 s a schema): without
a cache dir the first documents of a run go to jsonschema alone (a hook's few never
pay it, a fleet pays it once a run); with one, the schema is compiled at its first
document and kept there (`compiled_validators`), so every later run, a hook's
included, loads it in a millisecond and validates fast from its first document.

jsonschema itself (~70 ms to import) is imported and its validator built only when a
document needs it. A schema too large to compile is run by jsonschema alone; with a
cache dir, a document it found valid is remembered there (`verdicts`), so a run whose
documents were all seen valid before never imports it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema

from compiler.policy import verdicts
from compiler.policy.compiled_validators import compiled_validator

if TYPE_CHECKING:
    import jsonschema


@dataclass(frozen=True)
class Failure:
    """Why a document is invalid, as each validator that looked at it says."""

    errors: tuple[jsonschema.ValidationError, ...]  # jsonschema's: complete, located
    # The compiled validator's first error, when it ran. It can be the only one: the
    # two disagree in corners of regex and draft semantics.
    fast: fastjsonschema.JsonSchemaValueException | None = None


class TwoStageValidator:
    """jsonschema for the first `compile_after` documents, then fastjsonschema first.

    `schema` is what fastjsonschema compiles, `full` the jsonschema validator
    of the same rules, or a function that builds it (called at the first document
    that needs it). `full_label` names how `full` is built (its draft, its format
    checker): with a cache dir and a label, the valid verdicts of a schema too large
    to compile are kept there under it. `max_compiled_chars` leaves a schema larger than that
    (in characters of JSON) uncompiled: compile time grows with the schema, to
    seconds for a large CRD. `use_default` and `use_formats` are passed to
    fastjsonschema. With a `cache_dir` the compiled validator is read from it (or
    compiled at the first document and stored there), whatever `compile_after` says.
    """

    def __init__(
        self,
        schema: dict[str, Any],
        full: jsonschema.protocols.Validator | Callable[[], jsonschema.protocols.Validator],
        *,
        full_label: str | None = None,
        compile_after: int,
        max_compiled_chars: int | None = None,
        use_default: bool = True,
        use_formats: bool = True,
        cache_dir: Path | None = None,
    ) -> None:
        self._full = full
        self._full_label = full_label
        self._schema_json: str | None = None  # the canonical JSON, once it was needed
        self.checked = 0  # documents validated so far
        # fastjsonschema knows drafts 4-7 only: it is given the rules without the draft
        # they are written in (the schemas keep to keywords the drafts share).
        self.schema = {k: val for k, val in schema.items() if k != "$schema"}
        self._draft = schema.get("$schema")
        self._compile_after = compile_after
        self._max_compiled_chars = max_compiled_chars
        self._use_default = use_default
        self._use_formats = use_formats
        self._cache_dir = cache_dir
        self._fast: Callable[[Any], Any] | None = None

    @property
    def full(self) -> jsonschema.protocols.Validator:
        """The jsonschema validator, built at the first call when given as a function."""
        if callable(self._full):
            self._full = self._full()
        return self._full

    def validate(self, document: Any) -> Failure | None:
        """None for a valid document, else what each validator found wrong."""
        self.checked += 1
        first = 1 if self._cache_dir is not None else self._compile_after + 1
        if self.checked == first:
            self._fast = self._compiled()
        fast_error = None
        if self._fast is not None:
            try:
                self._fast(document)
                return None
            except fastjsonschema.JsonSchemaValueException as error:
                fast_error = error
        kept = self._verdict_key(document) if fast_error is None else None
        if kept is not None and verdicts.seen_valid(*kept):
            return None
        errors = tuple(self.full.iter_errors(document))
        if errors or fast_error is not None:
            return Failure(errors, fast_error)
        if kept is not None:
            verdicts.keep_valid(*kept)
        return None

    def _verdict_key(self, document: Any) -> tuple[Path, str] | None:
        """Where jsonschema's verdict on `document` is kept (the cache dir, the key);
        None: nowhere (no cache dir or no label). Only asked for a schema that has no
        compiled validator."""
        if self._cache_dir is None or self._full_label is None or self._schema_json is None:
            return None
        # The schema as jsonschema has it: the rules, and the draft they name.
        schema = f"{self._draft!r}\0{self._schema_json}"
        return self._cache_dir, verdicts.key(self._full_label, schema, document)

    def _compiled(self) -> Callable[[Any], Any] | None:
        """The compiled validator; None for a schema too large to compile."""
        text = json.dumps(self.schema, sort_keys=True)  # the key; its length, the limit
        self._schema_json = text
        limit = self._max_compiled_chars
        if limit is not None and len(text) > limit:
            return None
        return compiled_validator(
            self.schema,
            text,
            use_default=self._use_default,
            use_formats=self._use_formats,
            cache_dir=self._cache_dir,
        )
