"""The collector's settings during a compile, and after it."""

from __future__ import annotations

import gc

import pytest

from compiler.gctuning import fewer_collections


def test_thresholds_raised_inside_and_restored_after_even_on_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        assert gc.get_threshold()[0] > before[0]
        assert gc.get_freeze_count() > 0  # what existed before is not scanned again
        raise RuntimeError("a failed compile")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cyclic_garbage_is_still_collected_when_asked() -> None:
    with fewer_collections():

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        del a, b
        assert gc.collect() >= 2
