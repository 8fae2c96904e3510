"""One schema, two validators: a compiled one for speed, jsonschema for the detail.

fastjsonschema answers the common case, a valid document, at a fraction of
jsonschema's cost, but it stops at the first error and says little about it;
only a document that fails is run through jsonschema, for its complete and
located errors. Compiling has a cost of its own (30 ms to 0.15 s a schema), so
the first documents of a run go to jsonschema alone: a hook's few never pay
it, a fleet pays it once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastjsonschema
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
    of the same rules. `max_compiled_chars` leaves a schema larger than that
    (in characters of JSON) uncompiled: compile time grows with the schema, to
    seconds for a large CRD. `use_default` and `use_formats` are passed to
    fastjsonschema.
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
    ) -> None:
        self.full = full
        self.checked = 0  # documents validated so far
        self.schema = schema
        self._compile_after = compile_after
        self._max_compiled_chars = max_compiled_chars
        self._use_default = use_default
        self._use_formats = use_formats
        self._fast: Callable[[Any], Any] | None = None

    def validate(self, document: Any) -> Failure | None:
        """None for a valid document, else what each validator found wrong."""
        self.checked += 1
        if self.checked == self._compile_after + 1 and self._compilable():
            self._fast = fastjsonschema.compile(
                self.schema,
                use_default=self._use_default,
                use_formats=self._use_formats,
            )
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

    def _compilable(self) -> bool:
        limit = self._max_compiled_chars
        return limit is None or len(json.dumps(self.schema)) <= limit
