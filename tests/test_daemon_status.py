"""A killed daemon's status file is not its word: `kill -9` leaves daemon.json behind, saying
every pod is ready; nothing may wait on it as if a daemon still served (no root needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from podnet.daemon import supervisor
from podnet.state.files import StateFiles, file_digest
from podnet.testing import pod_entry, runtime_doc


def _leftovers(root, pid: int) -> None:
    files = StateFiles(root)
    pods = [pod_entry("x", "a", "n1", "10.244.1.2", "podnet.t.pod.x.a", {"c": [(80, "TCP")]})]
    files.runtime.write_text(json.dumps(runtime_doc("t", pods=pods)))
    status = {"pid": pid, "cluster": "t", "runtime": file_digest(files.runtime)}
    files.status.write_text(json.dumps(status))
    files.ready.write_text(json.dumps({"x/a": True}))


def test_wait_ready_does_not_trust_the_status_of_a_dead_daemon(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _leftovers(tmp_path, dead.pid)
    with pytest.raises(supervisor.DaemonError, match="not running"):
        supervisor.wait_ready(tmp_path, 1)


def test_wait_ready_does_not_trust_a_status_whose_pid_is_a_stranger(tmp_path):
    _leftovers(tmp_path, os.getpid())  # alive, but not this directory's daemon
    with pytest.raises(supervisor.DaemonError, match="not running"):
        supervisor.wait_ready(tmp_path, 1)
