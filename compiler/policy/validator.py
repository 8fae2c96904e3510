"""One schema, two validators: a compiled one for speed, jsonschema for the detail.

fastjsonschema answers the common case, a valid document, at a fraction of
jsonschema's cost, but it stops at the first error and says little about it;
only a document that fails is run through jsonschema, for its complete and
located errors. Compiling has a cost of its own (30 ms to 0.15 s a schema): without
a cache dir the first documents of a run go to jsonschema alone (a hook's few never
pay it, a fleet pays it once a run); with one, the schema is compiled at its first
document and kept there (`compiled_validators`), so every later run, a hook's
included, loads it in a millisecond and validates fast from its first document.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema

from compiler.policy.compiled_validators import compiled_validator


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
    of the same rules. `max_compiled_chars` leaves a schema larger than that
    (in characters of JSON) uncompiled: compile time grows with the schema, to
    seconds for a large CRD. `use_default` and `use_formats` are passed to
    fastjsonschema. With a `cache_dir` the compiled validator is read from it (or
    compiled at the first document and stored there), whatever `compile_after` says.
    """

    def __init__(
        self,
        schema: dict[str, Any],
        full: jsonschema.protocols.Validator,
        *,
        compile_after: int,
        max_compiled_chars: int | None = None,
        use_default: bool = True,
        use_formats: bool = True,
        cache_dir: Path | None = None,
    ) -> None:
        self.full = full
        self.checked = 0  # documents validated so far
        # fastjsonschema knows drafts 4-7 only: it is given the rules without the draft
        # they are written in (the schemas keep to keywords the drafts share).
        self.schema = {k: val for k, val in schema.items() if k != "$schema"}
        self._compile_after = compile_after
        self._max_compiled_chars = max_compiled_chars
        self._use_default = use_default
        self._use_formats = use_formats
        self._cache_dir = cache_dir
        self._fast: Callable[[Any], Any] | None = None

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
        errors = tuple(self.full.iter_errors(document))
        if errors or fast_error is not None:
            return Failure(errors, fast_error)
        return None

    def _compiled(self) -> Callable[[Any], Any] | None:
        """The compiled validator; None for a schema too large to compile."""
        text = json.dumps(self.schema, sort_keys=True)  # the key; its length, the limit
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
