"""The bounded history on disk and its readers (no root: a temporary state directory)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

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


def _check_none_twice_none_left_out(
    got: list[Flow | Lost], last: int, first: int | None = None
) -> None:
    """Flows `_flow(i)` in order from `first` (None: wherever the reader started) to
    `last`, each once; a gap only where a Lost record of the history says how many."""
    expect: float | None = first
    for r in got:
        if isinstance(r, Lost):
            assert r.source == "history" and expect is not None, got
            expect += r.messages
            continue
        assert expect is None or r.time == expect, (r.time, expect, [x.time for x in got])
        expect = r.time + 1
    assert expect == last + 1


def _writes(w: history.Writer, start: int, n: int) -> int:
    for i in range(start, start + n):
        w.write([_flow(i)])  # one record a write: rotations can follow each other
    return start + n


BURSTS = [0, 1, 2, 0, 3, 4, 5, 0, 6, 6, 1, 0, 6, 2, 5, 3]  # records per look of the reader


def test_follow_sees_every_record_across_rotations_none_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer paced by the reader's looks (its `stop` calls) and by what it consumes:
    up to 8 records (4 a file: up to two rotations) between two looks, at every position
    in a file; nothing may be lost or read twice, whatever the timing of the machine."""
    monkeypatch.setattr(history, "POLL", 0.0)
    w = history.Writer(tmp_path, max_bytes=1200)  # 4 records a file
    nxt = _writes(w, 0, 3)
    bursts = iter(BURSTS * 4)
    idle = 0

    def look() -> bool:
        nonlocal nxt, idle
        n = next(bursts, None)
        if n is None:
            idle += 1
            return idle > 5
        nxt = _writes(w, nxt, n)
        return False

    got: list[Flow | Lost] = []
    for r in history.records(tmp_path, follow_on=True, stop=look):
        got.append(r)
        if len(got) % 4 == 0:  # and between the records it yields
            nxt = _writes(w, nxt, 1)
    w.close()
    assert not [r for r in got if isinstance(r, Lost)]
    assert [r.time for r in got] == [float(i) for i in range(nxt)]
    assert [r.seq for r in got] == list(range(1, nxt + 1))


def test_a_reader_a_whole_file_behind_gets_a_lost_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "POLL", 0.0)
    w = history.Writer(tmp_path, max_bytes=1200)  # 4 records a file
    _writes(w, 0, 2)
    looks = iter(range(5))
    reader = history.follow(tmp_path, stop=lambda: next(looks, None) is None)  # after 2
    _writes(w, 2, 13)  # 3 rotations. The reader's file is open: it reads it to its end
    got = list(reader)  # (2-3); 4-7 rotated away unread; 8-11 in the older file; 12-14
    w.close()
    assert [r.time for r in got[:2]] == [2.0, 3.0]
    lost = got[2]
    assert isinstance(lost, Lost) and (lost.source, lost.messages) == ("history", 4)
    assert [r.time for r in got[3:]] == [float(i) for i in range(8, 15)]
    _check_none_twice_none_left_out(got, 14, first=2)


def test_numbering_goes_on_after_a_restart_and_a_cut_line(tmp_path: Path) -> None:
    w = history.Writer(tmp_path, max_bytes=1200)
    _writes(w, 0, 4)  # rotated: the current file is empty, the numbers are in the older
    w.close()
    w = history.Writer(tmp_path, max_bytes=1200)
    _writes(w, 4, 1)
    w.close()
    with history.paths(tmp_path)[1].open("a") as f:
        f.write('{"type": "flow", "seq": 9, "ti')  # a crash mid-write
    w = history.Writer(tmp_path, max_bytes=1200)
    _writes(w, 5, 2)
    w.close()
    got = history.recent(tmp_path)
    assert [(r.seq, r.time) for r in got] == [(i + 1, float(i)) for i in range(7)]
    assert history.last_seq(tmp_path) == 7


def test_many_readers_while_the_writer_rotates_fast(tmp_path: Path) -> None:
    """Real threads, real timing: readers that start at any moment (during a rotation,
    between the two files of the history) read each record once, in order, or account
    for it in a Lost record (a reader may fall a whole file behind on a loaded machine),
    and every one reaches the last record."""
    w = history.Writer(tmp_path, max_bytes=1200)  # 4 records a file: a rotation per 4
    done = threading.Event()
    outputs: list[list[Flow | Lost]] = []

    def read(got: list[Flow | Lost]) -> None:
        for r in history.records(tmp_path, follow_on=True, stop=done.is_set):
            got.append(r)

    readers = []
    for i in range(400):
        w.write([_flow(i)])
        if i % 40 == 5:
            outputs.append([])
            readers.append(threading.Thread(target=read, args=(outputs[-1],)))
            readers[-1].start()
        time.sleep(0.001 * (i % 4))
    deadline = time.monotonic() + 60  # 10 readers on 2 loaded cores: seconds, not 60
    while time.monotonic() < deadline and not all(got and got[-1].time == 399.0 for got in outputs):
        time.sleep(0.05)
    done.set()
    for t in readers:
        t.join()
    w.close()
    assert len(outputs) == 10
    for got in outputs:
        _check_none_twice_none_left_out(got, 399)


def test_follow_from_now_yields_what_comes_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "POLL", 0.0)
    w = history.Writer(tmp_path, max_bytes=1200)
    _writes(w, 0, 6)  # the current file holds 4 and 5 (numbers 5 and 6)
    looks = iter(range(4))
    reader = history.follow(tmp_path, stop=lambda: next(looks, None) is None)
    _writes(w, 6, 3)  # a rotation among them
    got = list(reader)
    w.close()
    assert [(r.seq, r.time) for r in got] == [(7, 6.0), (8, 7.0), (9, 8.0)]


@pytest.mark.parametrize("rotations", [1, 2])
@pytest.mark.parametrize("when", ["between the opens", "after the opens"])
def test_a_rotation_while_the_history_is_opened_yields_none_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rotations: int, when: str
) -> None:
    """The race the threaded test above met under load: the Writer rotates while a reader
    opens the history's two files. Whatever the moment, each record once, in order."""
    w = history.Writer(tmp_path, max_bytes=1200)  # 4 records a file
    n = _writes(w, 0, 10)  # older file and current file both hold records
    real_open = history._File.open
    fired: list[bool] = []

    def rotate() -> None:
        nonlocal n
        if not fired:
            fired.append(True)
            n = _writes(w, n, 4 * rotations)

    def open_(path: Path) -> history._File | None:
        if when == "between the opens" and path.name == "flows.jsonl":
            rotate()  # the older file is open already, the current one not yet
        f = real_open(path)
        if when == "after the opens" and path.name == "flows.jsonl":
            rotate()  # both open, neither read
        return f

    monkeypatch.setattr(history._File, "open", staticmethod(open_))
    monkeypatch.setattr(history, "POLL", 0.0)
    looks = iter(range(6))
    got = list(history.records(tmp_path, follow_on=True, stop=lambda: next(looks, None) is None))
    w.close()
    assert fired
    _check_none_twice_none_left_out(got, n - 1)
