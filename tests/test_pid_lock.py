"""The pid lock: one process of a kind per state directory, a stale file no obstacle."""

from __future__ import annotations

import os
from pathlib import Path

from podnet.state import pid_lock


def test_a_second_claim_fails_while_the_first_holds(tmp_path: Path) -> None:
    path = tmp_path / "run" / "dns.pid"
    fd = pid_lock.claim(path)
    assert fd is not None
    assert pid_lock.claim(path) is None  # another open file description: flock refuses
    assert pid_lock.holder(path) == str(os.getpid())
    pid_lock.release(path, fd)
    assert not path.exists()
    again = pid_lock.claim(path)
    assert again is not None
    pid_lock.release(path, again)


def test_a_stale_file_is_no_obstacle_and_not_ours_is_not_removed(tmp_path: Path) -> None:
    path = tmp_path / "daemon.pid"
    path.write_text("999999\n")  # left by a killed process: no lock held
    fd = pid_lock.claim(path)
    assert fd is not None and pid_lock.holder(path) == str(os.getpid())
    path.write_text("999999\n")  # the file names someone else by now: leave it
    pid_lock.release(path, fd)
    assert path.exists() and pid_lock.holder(path) == "999999"
    assert pid_lock.holder(tmp_path / "none.pid") == "?"
