"""One process of a kind per state directory: an exclusive flock on its pid file, held for
the process's life. A second daemon, DNS server or flow collector of the same directory
stops at the lock, and a stale file left by a killed one is no obstacle (the lock died with
its holder); a daemon restarted after a crash adopts the children that still run."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def claim(path: Path) -> int | None:
    """The locked fd, with our pid written into the file; None when another process holds
    the lock (its pid stays in the file, for the caller's message: `holder`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def holder(path: Path) -> str:
    """The pid the file names ('?' when it names none)."""
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


def release(path: Path, fd: int) -> None:
    """Remove the pid file if it is still ours, then drop the lock."""
    try:
        if int(path.read_text().strip()) == os.getpid():
            path.unlink()
    except (FileNotFoundError, ValueError):
        pass
    os.close(fd)
