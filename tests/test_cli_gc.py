"""Commands that pause the cyclic collector give it back."""

from __future__ import annotations

from pathlib import Path


def test_apply_leaves_the_cycle_collector_on(tmp_path: Path) -> None:
    """`apply` pauses the cyclic collector for its own work only: run in-process (tests,
    the dashboard's actions), it must not leave it off for the rest of the process."""
    import gc

    from podnet.cli.main import main

    assert gc.isenabled()
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\n")  # refused before anything is written (no cluster needed)
    main(["apply", "-f", str(bad), "--cluster", "no-such-cluster-x"])
    assert gc.isenabled()
