"""The daemon's side of `podnet apply` (daemon.apply_socket says the protocol): files in,
parsed, validated and stored on a worker thread (controller.apply_requests), a sync requested
as SIGUSR1 requests one, and the answer sent once a sync of the stored revision or later
has ended: the command returns when the change is enforced, as it does on its own path."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podnet.daemon.apply_socket import unix_address
from podnet.state.files import StateFiles

SYNC_TIMEOUT = 30.0  # as the CLI's own wait for a sync (cli.live.SYNC_TIMEOUT)

log = logging.getLogger(__name__)


class ApplyServer:
    """Serves `apply` requests on the state directory's socket. `request_sync` asks the
    syncer for a sync (as the SIGUSR1 handler does); `synced(status)` is called with the
    syncer's status after each sync, and wakes the requests it served."""

    def __init__(self, root: Path, request_sync: Callable[[], None]) -> None:
        self.path = StateFiles(root).apply_socket
        self.root = root
        self.request_sync = request_sync
        self.server: asyncio.AbstractServer | None = None
        self.waiting: list[tuple[int, asyncio.Future[dict[str, Any]]]] = []

    async def start(self) -> None:
        """Listen, owner only: bound, made 0600, and only then listening, so that no one
        else can connect in between. A path that cannot be bound leaves `apply` on its own
        path (logged)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket left by a daemon that was killed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with unix_address(self.path) as address:
                sock.bind(address)
            os.chmod(self.path, 0o600)
            sock.listen(64)
            self.server = await asyncio.start_unix_server(self._serve, sock=sock, limit=1 << 20)
        except OSError as e:
            sock.close()
            log.warning("apply socket %s: %s; `apply` takes its own path", self.path, e)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.path.unlink(missing_ok=True)

    def synced(self, status: dict[str, Any] | None) -> None:
        """A sync ended with `status`: answer the requests whose revision it reached."""
        revision = (status or {}).get("revision", -1)
        still = []
        for wanted, future in self.waiting:
            if revision >= wanted and not future.done():
                future.set_result(dict(status or {}))
            elif not future.done():
                still.append((wanted, future))
        self.waiting = still

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _same_user(writer.get_extra_info("socket")):
                return
            reply = await self._handle(await reader.read())  # until the CLI's EOF
            writer.write(json.dumps(reply, separators=(",", ":")).encode())
            await writer.drain()
        except (ConnectionError, OSError) as e:  # the CLI went away: nothing to answer
            log.info("apply: %s", e)
        finally:
            writer.close()

    async def _handle(self, data: bytes) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            from podnet.controller.apply_requests import answer

            sources = json.loads(data)["sources"]
            reply = await loop.run_in_executor(None, answer, self.root, sources)
        except Exception as e:  # a bug (nothing stored): the CLI then takes its own path
            log.exception("apply request failed")
            return {"error": f"{type(e).__name__}: {e}"}
        if "revision" not in reply:
            log.info(
                "apply of %d file(s): refused (%d problems)",
                len(sources),
                len(reply["problems"]),
            )
            return reply
        stored = time.monotonic()
        await self._wait_synced(reply)
        log.info(
            "apply of %d file(s): revision %d stored in %.3fs, synced %.3fs later",
            len(sources),
            reply["revision"],
            stored - started,
            time.monotonic() - stored,
        )
        return reply

    async def _wait_synced(self, reply: dict[str, Any]) -> None:
        """Request a sync and put its status into `reply` ("sync"), or why there is none
        ("sync_error": the change is stored, the next sync takes it up)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting.append((reply["revision"], future))
        self.request_sync()
        try:
            reply["sync"] = await asyncio.wait_for(future, SYNC_TIMEOUT)
        except TimeoutError:
            reply["sync_error"] = (
                f"the daemon did not sync revision {reply['revision']} within {SYNC_TIMEOUT:g}s"
            )


def _same_user(sock: socket.socket | None) -> bool:
    """The peer runs as the daemon's user (the socket's mode already says so; this is the
    kernel's word for it)."""
    if sock is None:
        return False
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return bool(uid == os.geteuid())
