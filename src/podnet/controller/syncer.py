"""The reconciler in the daemon: a sync on request (a signal from the CLI after it stored a
change), and a full one every resync period (kube-proxy's baseline). Runs each sync on a
worker thread, so the event loop keeps serving the workload meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from podnet.controller.reconciler import Reconciler, SyncResult
from podnet.state.store import Store

RESYNC_ENV = "PODNET_RESYNC_SECONDS"
RESYNC_SECONDS = 30.0  # a full sync at least this often: repairs what else changed the kernel

log = logging.getLogger(__name__)


def resync_period() -> float:
    """Seconds between full syncs: $PODNET_RESYNC_SECONDS (tests use a short one), else 30."""
    text = os.environ.get(RESYNC_ENV, "")
    try:
        value = float(text) if text else RESYNC_SECONDS
    except ValueError:
        log.warning("%s=%r is not a number of seconds: using %g", RESYNC_ENV, text, RESYNC_SECONDS)
        return RESYNC_SECONDS
    return value if value > 0 else RESYNC_SECONDS


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a sync is under way: a collection that walks a
    5,000-pod cluster's objects paused a sync for 200-270 ms. The collection owed runs once
    the sync has answered (the collector is back on), off the change's way to enforcement."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _freeze_start_up() -> None:
    """After the start-up work (modules, the baseline's cluster, engine and rulesets): move
    every object alive now out of the collector's reach (gc.freeze), so that later
    collections walk only what later syncs made. An incremental sync keeps most of those
    objects (state.follow patches the last snapshot). The price: a reference cycle among
    them that becomes garbage is never collected; what reference counting frees is freed."""
    started = time.monotonic()
    gc.collect()
    gc.freeze()
    log.info(
        "start-up objects frozen (gc.freeze: %d) in %.3fs",
        gc.get_freeze_count(),
        time.monotonic() - started,
    )


class Syncer:
    """The daemon's side: SIGUSR1 -> one sync (in a worker thread; signals that arrive
    during a sync coalesce into one more), then a listener reload when runtime.json changed
    or a namespace was (re-)created. Every `period` seconds without a full sync, a periodic
    one: the reconciler's drift watch decides whether it is full (kube-proxy's baseline: it
    repairs what else changed the kernel, such as a deleted table or pod namespace) or a
    check that costs next to nothing. `status` goes into daemon.json as "sync" ({"revision", "ok", "error",
    ...}): the CLI waits until it shows the revision it wrote."""

    def __init__(
        self,
        reconciler: Reconciler,
        reload: Callable[[], Awaitable[None]],
        period: float = RESYNC_SECONDS,
        requested: asyncio.Event | None = None,
        since: list[float] | None = None,
        after: Callable[[SyncResult], Awaitable[None]] | None = None,
        freeze: bool = False,
    ) -> None:
        self.reconciler = reconciler
        self.reload = reload
        self.period = period
        self.event = requested or asyncio.Event()  # set: a sync was requested
        # When the oldest request not yet taken up arrived (time.monotonic; the signal
        # handler appends it): the sync that takes it up reports "latency", request to
        # done, which is the daemon's share of a change's way to enforcement.
        self.since = since if since is not None else []
        self.status: dict[str, Any] | None = None
        self.last_full = time.monotonic()
        self.after = after  # e.g. the DNS server's reload, once the sync wrote dns.json
        # The daemon's: freeze what the start-up made (_freeze_start_up); a process-wide
        # act, so not for a Syncer inside another program (the tests).
        self.freeze = freeze
        # Full syncs asked for (SIGUSR2: `doctor --fix`) and taken up: "full_requests" in
        # the status tells the asker that a full sync started after its request has ended.
        self.full_asked = 0
        self.full_taken = 0

    def request_full(self) -> None:
        """The next sync compares the whole kernel with the store (as after a failure)."""
        self.full_asked += 1
        self.event.set()

    def start(
        self, loop: asyncio.AbstractEventLoop, write_status: Callable[[], None]
    ) -> asyncio.Task[None]:
        """Sync whenever `requested` is set (requests coalesce), and every period."""
        return asyncio.ensure_future(self._run(loop, write_status))

    async def _run(self, loop: asyncio.AbstractEventLoop, write_status: Callable[[], None]) -> None:
        try:
            synced = await loop.run_in_executor(None, self._baseline)
        except Exception as e:  # the first sync will be full and say what is wrong
            log.warning("no baseline (%s: %s): the first sync is full", type(e).__name__, e)
            synced = False
        if synced:
            write_status()  # daemon.json says at once which revision the kernel holds
        else:
            self.event.set()
        self.last_full = time.monotonic()
        frozen = not self.freeze
        if synced and not frozen:
            frozen = True
            _freeze_start_up()
        while True:
            periodic = not await self._wait()
            self.event.clear()
            asked = self.since.pop() if self.since else None
            full_asked = self.full_asked
            if full_asked > self.full_taken:
                self.reconciler.full_next = True
            with _collector_paused():
                result = await loop.run_in_executor(None, self.reconciler.sync, periodic)
                latency = None if asked is None else time.monotonic() - asked
                level = log.debug if result.checked else log.info if result.ok else log.error
                after = "" if latency is None else f" ({latency:.3f}s after the request)"
                level("%s%s", result.summary(), after)
                if result.full or periodic:
                    self.last_full = time.monotonic()
                if result.runtime_changed or result.added:
                    await self.reload()  # new namespaces: their sockets are opened anew
                if self.after is not None and not result.checked:
                    await self.after(result)
                self.full_taken = full_asked
                self.status = {**result.status(), "latency": latency, "full_requests": full_asked}
                write_status()
            if not frozen and result.ok:
                frozen = True
                _freeze_start_up()

    async def _wait(self) -> bool:
        """True on a sync request, False when the resync period has passed without one
        full sync."""
        left = self.last_full + self.period - time.monotonic()
        try:
            await asyncio.wait_for(self.event.wait(), timeout=max(0.0, left))
        except TimeoutError:
            return False
        return True

    def _baseline(self) -> bool:
        """True when the kernel already matches the store (`up` recorded its revision)."""
        with Store.open(self.reconciler.root) as store:
            revision, synced = store.revision(), store.get_meta("synced_revision")
        if synced != revision:
            log.info("store revision %s, synced %s: full sync", revision, synced)
            return False
        started = time.monotonic()
        if not self.reconciler.assume_synced():
            log.info("allocations of revision %s not recorded: full sync", revision)
            return False
        self.status = {"revision": revision, "ok": True, "full": True, "error": None}
        log.info("baseline of revision %d in %.3fs", revision, time.monotonic() - started)
        return True
