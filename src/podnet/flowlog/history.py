"""The daemon's bounded history of flows, and the reader API (`podnet flows`, the
dashboard).

Where and how much: the collector appends JSON lines (flowlog.flow_record) to
`<state dir>/flows.jsonl`; when that file passes MAX_BYTES (4 MiB, some 7,700 records)
it becomes `flows.jsonl.1` (replacing the one before) and a new file starts. So the
history is the last 4-8 MiB of records, on disk (it survives a restart of the collector,
and a reader needs no connection to it), and it costs the collector one append per batch
of records. Readers:

    recent(root)           the records of the history, oldest first
    follow(root)           records appended from now on, as they come (a generator that
                           polls every 0.1 s and follows the rotation)
    records(root, follow)  recent, then (follow=True) follow: what `flows -f` prints

None twice, none left out, by construction: the Writer numbers every record (`seq`, 1, 2,
3, ... going on from the history's last number after a restart), and a reader yields a
record only if its number is above the last one it yielded. A number further on than the
next means records in between: they are looked for in the older file (the current one
rotated since the reader last looked), and what is not there either rotated away unread
(the reader fell a whole file behind): a Lost record (`source: "history"`) says how many.
A file's identity (has the current file rotated away from under the reader's descriptor?)
is compared by (st_dev, st_ino) only between two descriptors open at the same time: an
inode number is reused once its file is unlinked and closed (seen here: the new current
file often gets the number of one deleted a rotation before), never while it is open.

Rejected: a socket or an in-memory ring in the collector. A reader then depends on the
collector being up, and the collector on its readers draining fast enough; a file has
neither coupling, and a look every 0.1 s costs a reader a read and two opens (idle: some
1.4 ms of CPU a second, measured).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from podnet.flowlog.flow_record import Lost, Record, dumps, loads
from podnet.state.files import StateFiles

MAX_BYTES = 4 << 20
POLL = 0.1
_TAIL = 1 << 16  # enough for the last whole line (a record is some 540 bytes)


def paths(root: Path) -> tuple[Path, Path]:
    """(the older file, the current one)."""
    current = StateFiles(root).flows
    return current.with_name(current.name + ".1"), current


def _parse(data: bytes) -> Iterator[Record]:
    for line in data.decode(errors="replace").splitlines():
        if line.strip():
            try:
                yield loads(line)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash mid-write


def _complete(path: Path) -> bytes:
    """The file's whole lines (a line being written is not yet a record)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return b""
    return data[: data.rfind(b"\n") + 1]


def _last_seq(path: Path) -> int | None:
    """The number of the file's last numbered record (None: none there)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - _TAIL))
            tail = f.read()
    except FileNotFoundError:
        return None
    numbered = [r.seq for r in _parse(tail[: tail.rfind(b"\n") + 1]) if r.seq]
    return numbered[-1] if numbered else None


def last_seq(root: Path) -> int:
    """The number of the history's last record (0: none yet)."""
    old, current = paths(root)
    found = _last_seq(current)
    return found if found is not None else (_last_seq(old) or 0)


class Writer:
    """Appends records to the history, numbering them and rotating it at `max_bytes`."""

    def __init__(self, root: Path, max_bytes: int = MAX_BYTES) -> None:
        self.old, self.current = paths(root)
        self.max_bytes = max_bytes
        self.seq = last_seq(root)  # the numbering goes on across restarts
        self._fd = self._open()
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            os.write(self._fd, b"\n")  # a line cut by a crash: the next record starts a line

    def _open(self) -> int:
        return os.open(self.current, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, records: Iterable[Record]) -> None:
        lines = []
        for r in records:
            self.seq += 1
            lines.append(dumps(dataclasses.replace(r, seq=self.seq)) + "\n")
        if not lines:
            return
        os.write(self._fd, "".join(lines).encode())
        if os.fstat(self._fd).st_size >= self.max_bytes:
            os.replace(self.current, self.old)
            os.close(self._fd)
            self._fd = self._open()

    def close(self) -> None:
        os.close(self._fd)


class _File:
    """One history file open for reading, read in whole lines as they are appended."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = b""

    @classmethod
    def open(cls, path: Path) -> _File | None:
        try:
            return cls(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        except FileNotFoundError:
            return None  # not yet, or between the Writer's rename and its new file

    def read(self) -> list[Record]:
        """The records completed since the last read."""
        while chunk := os.read(self.fd, 1 << 16):
            self.pending += chunk
        complete, _, self.pending = self.pending.rpartition(b"\n")
        return list(_parse(complete)) if complete else []

    def skip_to_end(self) -> int | None:
        """Past the file's last whole line (not parsing what comes before it, up to 4 MiB):
        the number of its last record, None if the tail holds none."""
        size = os.fstat(self.fd).st_size
        start = max(0, size - _TAIL)
        tail = os.pread(self.fd, size - start, start)
        whole = tail[: tail.rfind(b"\n") + 1]
        os.lseek(self.fd, start + len(whole), os.SEEK_SET)
        numbered = [r.seq for r in _parse(whole[whole.rfind(b"\n", 0, -1) + 1 :]) if r.seq]
        return numbered[-1] if numbered else None

    def same_file(self, other: _File) -> bool:
        """Sound only because both are open: an open file's inode number is not reused."""
        a, b = os.fstat(self.fd), os.fstat(other.fd)
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    def close(self) -> None:
        os.close(self.fd)


class _Reader:
    """What one reader has yielded (the last number) and the file it follows."""

    def __init__(self, root: Path, last: int | None) -> None:
        self.old, self.current = paths(root)
        self.last = last  # None: yield the first numbered record whatever its number
        self.file: _File | None = None

    def emit(self, records: Iterable[Record], new_file: bool = False) -> Iterator[Record]:
        """The records not yielded yet, with what lies between them and the last one."""
        for r in records:
            if not r.seq:
                yield r  # a line from before numbering: nothing to compare
                continue
            if new_file and self.last is not None and r.seq <= self.last:
                self.last = None  # a new file numbered from below: a new history (state wiped)
            new_file = False
            if self.last is not None:
                if r.seq <= self.last:
                    continue  # yielded already
                if r.seq > self.last + 1:
                    yield from self._between(r)
            self.last = r.seq
            yield r

    def _between(self, r: Record) -> Iterator[Record]:
        """Records numbered between the last yielded and `r`: in the older file if the
        current one rotated since the last look; else rotated away unread (Lost)."""
        assert self.last is not None
        low = self.last
        for o in [o for o in _parse(_complete(self.old)) if low < o.seq < r.seq]:
            yield from self._lost_before(o)
            self.last = o.seq
            yield o
        yield from self._lost_before(r)

    def _lost_before(self, r: Record) -> Iterator[Lost]:
        assert self.last is not None
        if (missing := r.seq - 1 - self.last) > 0:
            yield Lost(r.time, "", "history", 0, missing)

    def history(self) -> Iterator[Record]:
        """The older file, then the current one (kept open for `follow`). Both are opened
        before either is read, the older first, in the order they were written: whatever
        rotates between the two opens, the current file holds the later records, and what
        rotated in between is in the older path now (`_between`) or gone (Lost). Opened the
        other way round, a rotation in between made the file opened as current the older
        one, and its records, lower than those already yielded, read as a new history:
        yielded twice (seen under load in tests/test_flowlog_history.py)."""
        older = _File.open(self.old)
        self.file = _File.open(self.current)
        if older is not None:
            try:
                yield from self.emit(older.read())
            finally:
                older.close()
        if self.file is not None:
            yield from self.emit(self.file.read(), new_file=True)

    def follow(self, stop: Callable[[], bool]) -> Iterator[Record]:
        """One look per `stop()` call: read the file to its end, then see whether it is
        still the current one. Nothing is lost while the Writer rotates at most twice
        between two looks (8 MiB: some 15,000 records)."""
        try:
            while not stop():
                if self.file is None:
                    self.file = _File.open(self.current)
                    if self.file is None:
                        time.sleep(POLL)
                        continue
                    yield from self.emit(self.file.read(), new_file=True)
                    continue
                got = self.file.read()
                yield from self.emit(got)
                older = _File.open(self.old)  # before the current one: in the order written
                now = _File.open(self.current)
                if now is None or now.same_file(self.file):
                    for f in (older, now):
                        if f is not None:
                            f.close()
                    if not got:
                        time.sleep(POLL)
                    continue
                # Rotated: the Writer appends no more to our file; what it wrote before the
                # rotation is read now, then the file between ours and the new current one
                # (rotated twice since the last look), then the new one from its start.
                yield from self.emit(self.file.read())
                if older is not None:  # (or, opened just before our file rotated, the one
                    if not older.same_file(self.file):  # before it: all read, all skipped)
                        yield from self.emit(older.read())
                    older.close()
                self.file.close()
                self.file = now
                yield from self.emit(now.read(), new_file=True)
        finally:
            if self.file is not None:
                self.file.close()
                self.file = None


def recent(root: Path) -> list[Record]:
    """Every record of the history, oldest first."""
    reader = _Reader(root, None)
    try:
        return list(reader.history())
    finally:
        if reader.file is not None:
            reader.file.close()


def follow(
    root: Path, after: int | None = None, stop: Callable[[], bool] = lambda: False
) -> Iterator[Record]:
    """Records numbered above `after` (None: the history's last number now), as they are
    written, until `stop()` says so; rotations are followed, and a whole file rotated
    away unread is a Lost record."""
    if after is not None:
        return _Reader(root, after).follow(stop)
    reader = _Reader(root, None)
    reader.file = _File.open(reader.current)
    reader.last = reader.file.skip_to_end() if reader.file else None
    if reader.last is None:
        reader.last = last_seq(root)
    return reader.follow(stop)


def records(
    root: Path, follow_on: bool = False, stop: Callable[[], bool] = lambda: False
) -> Iterator[Record]:
    """The history, then (with `follow_on`) every record written after it, none twice
    and none left out (records are numbered: following goes on after the last one read)."""
    reader = _Reader(root, None)
    try:
        yield from reader.history()
        if follow_on:
            yield from reader.follow(stop)
    finally:
        if reader.file is not None:
            reader.file.close()
            reader.file = None
