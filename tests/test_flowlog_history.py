"""The bounded history on disk and its readers (no root: a temporary state directory)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from podnet.flowlog import history
from podnet.flowlog.flow_record import Decision, Flow, Lost, Peer


def _flow(i: int) -> Flow:
    return Flow(
        float(i),
        "TCP",
        Peer("10.244.0.2", 40000 + i, "a/x", "pod"),
        Peer("10.244.0.3", 80, "a/y", "pod"),
        "allowed",
        None,
        Decision("allowed", "a/y", "node-1", "a/p", 0),
        ("node-1",),
    )


def test_rotation_keeps_two_files_and_reads_oldest_first(tmp_path: Path) -> None:
    w = history.Writer(tmp_path, max_bytes=2000)
    for i in range(100):
        w.write([_flow(i)])
    w.close()
    old, current = history.paths(tmp_path)
    assert old.exists() and current.exists()
    assert old.stat().st_size >= 2000 > current.stat().st_size
    times = [r.time for r in history.recent(tmp_path)]
    assert times == sorted(times) and times[-1] == 99.0
    assert len(times) < 100  # bounded: the oldest are gone


def test_a_cut_last_line_is_not_a_record(tmp_path: Path) -> None:
    w = history.Writer(tmp_path)
    w.write([_flow(1), Lost(2.0, "node-1", "nflog", 1, 3)])
    w.close()
    with history.paths(tmp_path)[1].open("a") as f:
        f.write('{"type": "flow", "ti')
    assert [type(r).__name__ for r in history.recent(tmp_path)] == ["Flow", "Lost"]


def test_follow_sees_every_record_across_rotations_none_twice(tmp_path: Path) -> None:
    w = history.Writer(tmp_path, max_bytes=1200)  # 4 records a file
    w.write([_flow(i) for i in range(3)])
    seen: list[float] = []
    done = threading.Event()

    def read() -> None:
        for r in history.records(tmp_path, follow_on=True, stop=done.is_set):
            seen.append(r.time)

    t = threading.Thread(target=read)
    t.start()
    for i in range(3, 60):
        w.write([_flow(i)])
        time.sleep(0.02)  # up to 2 rotations per poll of the reader (0.1 s)
    deadline = time.monotonic() + 5
    while (not seen or seen[-1] != 59.0) and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    t.join()
    w.close()
    assert seen == [float(i) for i in range(60)]
