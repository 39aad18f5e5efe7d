"""The daemon's sync loop without root: a sync request runs an incremental sync, the resync
period forces a full one (which compares with the kernel), $PODNET_RESYNC_SECONDS sets the
period; `supervisor.request_sync` without a daemon says so."""

from __future__ import annotations

import asyncio

import pytest

from podnet.controller import syncer as syncer_mod
from podnet.controller.reconciler import Reconciler, SyncResult
from podnet.controller.syncer import Syncer, resync_period
from podnet.daemon import supervisor
from podnet.state.store import Store


class FakeReconciler:
    """Records each sync's `periodic` flag; the kernel is never touched."""

    def __init__(self, root) -> None:
        self.root = root
        self.calls: list[bool] = []
        self.full_next = False

    def assume_synced(self) -> bool:
        return True

    def sync(self, periodic: bool = False) -> SyncResult:
        self.calls.append(periodic)
        return SyncResult(len(self.calls), periodic, True, 0.0, periodic=periodic)


@pytest.fixture
def synced_store(tmp_path):
    with Store.open(tmp_path) as store:
        store.put("Namespace", None, "x", {})
        store.set_meta("synced_revision", store.revision())
    return tmp_path


async def _until(cond, what: str) -> None:
    for _ in range(1000):  # generous: a functional wait, not a time bound
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_the_resync_period_forces_full_syncs_and_requests_sync_incrementally(synced_store):
    fake = FakeReconciler(synced_store)
    reloads: list[int] = []

    async def reload() -> None:
        reloads.append(1)

    async def scenario() -> None:
        syncer = Syncer(fake, reload, period=0.05)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(syncer._run(loop, lambda: None))
        try:
            await _until(lambda: fake.calls.count(True) >= 2, "two periodic full syncs")
            syncer.period = 3600.0  # no more periodic syncs: the next one is a request
            seen = len(fake.calls)
            syncer.event.set()
            await _until(lambda: len(fake.calls) > seen, "a requested sync")
            assert fake.calls[seen] is False
            assert syncer.status and syncer.status["ok"]
        finally:
            task.cancel()

    asyncio.run(scenario())
    assert fake.calls[0] is True  # the baseline held: the first sync is the periodic one
    assert reloads == []  # nothing re-created, runtime.json unchanged


def test_a_periodic_sync_is_full_even_after_a_successful_one(tmp_path, monkeypatch):
    rec = Reconciler(tmp_path, "c1")
    seen: list[bool] = []

    def fake_desired():
        raise RuntimeError("stop here")

    monkeypatch.setattr(rec, "desired", fake_desired)
    with Store.open(tmp_path):
        pass
    rec.full_next = False
    seen.append(rec.sync(periodic=True).full)
    rec.full_next = False
    seen.append(rec.sync().full)
    assert seen == [True, False]


@pytest.mark.parametrize(
    "value, want",
    [(None, 30.0), ("2.5", 2.5), ("0", 30.0), ("-1", 30.0), ("soon", 30.0)],
    ids=["default", "set", "zero", "negative", "not-a-number"],
)
def test_resync_period_from_the_environment(monkeypatch, value, want):
    if value is None:
        monkeypatch.delenv(syncer_mod.RESYNC_ENV, raising=False)
    else:
        monkeypatch.setenv(syncer_mod.RESYNC_ENV, value)
    assert resync_period() == want


def test_request_sync_without_a_daemon_says_so(tmp_path):
    with pytest.raises(supervisor.DaemonError, match="no daemon runs"):
        supervisor.request_sync(tmp_path, 1, timeout=0.1)


def test_an_adopted_baseline_is_reported_at_once(synced_store):
    """daemon.json names the revision the kernel holds as soon as the daemon adopted it,
    not only after its first sync (which may be a period away)."""
    fake = FakeReconciler(synced_store)
    writes: list[dict] = []

    async def reload() -> None:
        return None

    async def scenario() -> None:
        syncer = Syncer(fake, reload, period=3600.0)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(syncer._run(loop, lambda: writes.append(syncer.status)))
        try:
            await _until(lambda: writes, "a status write")
        finally:
            task.cancel()

    asyncio.run(scenario())
    assert fake.calls == []  # no sync ran: the status is the baseline's
    assert writes[0] is not None and writes[0]["ok"] and writes[0]["full"]


def test_no_cyclic_collection_during_a_sync_and_start_up_objects_frozen(synced_store):
    """The daemon's Syncer (freeze=True): a sync runs with the collector paused (a full
    collection of a 5,000-pod cluster's objects took 200-270 ms of a sync), which is back
    on once the sync has answered; what the start-up made is frozen once (gc.freeze)."""
    import gc

    fake = FakeReconciler(synced_store)
    during: list[bool] = []
    real_sync = fake.sync

    def sync(periodic: bool = False) -> SyncResult:
        during.append(gc.isenabled())
        return real_sync(periodic)

    fake.sync = sync  # type: ignore[method-assign]

    async def reload() -> None:
        return None

    async def scenario() -> None:
        syncer = Syncer(fake, reload, period=3600.0, freeze=True)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(syncer._run(loop, lambda: None))
        try:
            syncer.event.set()
            await _until(lambda: syncer.status is not None and len(during) == 1, "a sync")
        finally:
            task.cancel()

    assert gc.isenabled() and gc.get_freeze_count() == 0
    try:
        asyncio.run(scenario())
        assert during == [False]
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_new_daemon_adopts_the_readiness_the_stored_slices_record(tmp_path):
    """After `up` the stored EndpointSlices hold `up`'s readiness (nothing served yet), and
    by the time the daemon adopts the store, its stand-in has proven pods ready. The
    baseline holds (with the stored readiness): the stand-in's is followed by an incremental
    sync, not a full sync of the whole cluster (31 s at 1,000 pods on a loaded machine)."""
    import yaml

    from podnet.model.cluster import load_cluster
    from podnet.state.changes import store_cluster
    from podnet.state.network import NetworkConfig
    from podnet.state.placement import place
    from podnet.testing import namespace, pod, service

    src = tmp_path / "in.yaml"
    docs = [namespace("x"), pod("x/a", labels={"app": "a"}), pod("x/b", labels={"app": "a"})]
    src.write_text(yaml.safe_dump_all([*docs, service("x/s", {"app": "a"})]))
    net = NetworkConfig()
    cluster = load_cluster([str(src)], node_count=2)
    with Store.open(tmp_path / "st") as store:
        store_cluster(store, cluster, place(cluster, net, strict=True), "c1", "host-gw", net)
    up = Reconciler(tmp_path / "st", "c1").desired()  # what `up`'s first sync records
    with Store.open(tmp_path / "st") as store, store.transaction():
        up.allocations.record(store)
        assert up.derived
        up.derived.record(store)
        store.set_meta("synced_revision", store.revision())

    def all_ready(namespace: str, pod: str) -> bool:
        return True

    assert Reconciler(tmp_path / "st", "c1", readiness=all_ready).desired().derived
    daemon = Reconciler(tmp_path / "st", "c1", readiness=all_ready)
    assert daemon.assume_synced()
    assert daemon.readiness is all_ready  # the stand-in's word for the syncs to come
    assert daemon.desired(daemon.last).derived  # ... which the next sync writes
