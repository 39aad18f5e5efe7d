"""cli.common: the cyclic collector is off during a one-shot analysis and back on after."""

from __future__ import annotations

import gc

import pytest

from podnet.cli.common import without_cycle_collection


def test_collector_off_inside_and_restored_after_errors_too() -> None:
    assert gc.isenabled()
    with without_cycle_collection():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), without_cycle_collection():
        raise RuntimeError
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with without_cycle_collection():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
