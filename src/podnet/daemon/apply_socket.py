"""The unix socket on which a cluster's daemon takes `podnet apply`'s documents: its
address, and the CLI's side of one request (the daemon's is daemon.apply_server).

One request per connection: the CLI sends `{"sources": [{"name", "text"} or {"name",
"documents": [[index, document], ...]}, ...]}` as JSON and shuts its side down; the daemon answers with one JSON object once the change is
enforced (or with the problems, nothing stored) and closes. The socket lives in the
cluster's state directory, owner only (root): whoever may use it may change the store
anyway."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_PATH = 100  # sun_path holds 108 bytes; longer paths go through the directory's fd


@contextlib.contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """An address for bind/connect of `path`, also when it is longer than sun_path allows
    (pytest's temporary directories): then through /proc/self/fd of its directory."""
    if len(os.fsencode(path)) < MAX_PATH:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def request(path: Path, sources: list[Any], timeout: float) -> dict[str, Any] | None:
    """Send `sources` to the daemon listening at `path`; its answer, or None when no daemon
    takes the request (no socket, nothing listening, the connection closed or timed out
    without an answer): the caller then does the work itself (the change is idempotent,
    so a request the daemon took up before it died does no harm when done again)."""
    payload = json.dumps({"sources": sources}, separators=(",", ":")).encode()
    chunks = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            with unix_address(path) as address:
                s.connect(address)
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(1 << 16):
                chunks.append(chunk)
    except OSError:  # also FileNotFoundError, ConnectionRefusedError, TimeoutError
        return None
    if not chunks:
        return None
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None
