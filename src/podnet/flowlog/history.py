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

Rejected: a socket or an in-memory ring in the collector. A reader then depends on the
collector being up, and the collector on its readers draining fast enough; a file has
neither coupling, and a poll of its size every 0.1 s costs a reader one fstat.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from podnet.flowlog.flow_record import Record, dumps, loads
from podnet.state.files import StateFiles

MAX_BYTES = 4 << 20
POLL = 0.1


def paths(root: Path) -> tuple[Path, Path]:
    """(the older file, the current one)."""
    current = StateFiles(root).flows
    return current.with_name(current.name + ".1"), current


class Writer:
    """Appends records to the history, rotating it at `max_bytes`."""

    def __init__(self, root: Path, max_bytes: int = MAX_BYTES) -> None:
        self.old, self.current = paths(root)
        self.max_bytes = max_bytes
        self._fd = self._open()

    def _open(self) -> int:
        return os.open(self.current, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, records: Iterable[Record]) -> None:
        data = "".join(dumps(r) + "\n" for r in records).encode()
        if not data:
            return
        os.write(self._fd, data)
        if os.fstat(self._fd).st_size >= self.max_bytes:
            os.replace(self.current, self.old)
            os.close(self._fd)
            self._fd = self._open()

    def close(self) -> None:
        os.close(self._fd)


def _parse(lines: Iterable[str]) -> Iterator[Record]:
    for line in lines:
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


def recent(root: Path) -> list[Record]:
    """Every record of the history, oldest first."""
    return list(_parse(b"".join(map(_complete, paths(root))).decode(errors="replace").splitlines()))


def follow(
    root: Path, offset: int | None = None, stop: Callable[[], bool] = lambda: False
) -> Iterator[Record]:
    """Records appended to the current file from byte `offset` on (None: from its end now),
    as they come, until `stop()` says so; a rotation is followed (the old file read to
    its end first, then the new one from its start)."""
    current = paths(root)[1]
    fd, pending = None, b""
    while not stop():
        if fd is None:
            try:
                fd = os.open(current, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                time.sleep(POLL)
                offset = 0  # the file that appears is new: all of it
                continue
            if offset is None:
                os.lseek(fd, 0, os.SEEK_END)
            else:
                os.lseek(fd, offset, os.SEEK_SET)
            offset = 0  # a file opened after a rotation is read from its start
        chunk = os.read(fd, 1 << 16)
        if chunk:
            pending += chunk
            complete, _, pending = pending.rpartition(b"\n")
            if complete:
                yield from _parse(complete.decode(errors="replace").splitlines())
            continue
        try:
            rotated = os.stat(current).st_ino != os.fstat(fd).st_ino
        except FileNotFoundError:
            rotated = True
        if rotated:  # this fd is a rotated file now, and was read to its end above
            ino = os.fstat(fd).st_ino
            os.close(fd)
            fd, pending = None, b""
            # Rotated twice since the last look: the file in between is the old one now.
            # (A reader that falls a whole file further behind loses that file.)
            old = paths(root)[0]
            with contextlib.suppress(FileNotFoundError):
                if os.stat(old).st_ino != ino:
                    yield from _parse(_complete(old).decode(errors="replace").splitlines())
            continue
        time.sleep(POLL)
    if fd is not None:
        os.close(fd)


def records(
    root: Path, follow_on: bool = False, stop: Callable[[], bool] = lambda: False
) -> Iterator[Record]:
    """The history, then (with `follow_on`) every record appended after it, none twice
    and none left out (following starts where the read of the history ended)."""
    old, current = paths(root)
    head = _complete(current)
    yield from _parse((_complete(old) + head).decode(errors="replace").splitlines())
    if follow_on:
        yield from follow(root, len(head), stop)
