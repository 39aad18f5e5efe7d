"""The cluster's store: one SQLite file per cluster under its state directory.

Objects are kept as their API JSON with a resource version (one counter per store, bumped on
every change, like etcd's revision). IPAM follows the CNI host-local plugin: an allocation is
recorded per pod, released when the pod is deleted, and an address held by one pod is never
handed to another (a UNIQUE constraint makes that a database invariant, not a convention).
Cluster meta (mode, node count, network config, phase) lives in a key/value table.

Like etcd's watch, the store answers "what changed since revision N" (`changes_since`): an
object's row carries the revision of its last change, and a deletion leaves a tombstone with
the revision that deleted it. Tombstones up to a revision every reader has seen are
compacted (`compact`); asking for changes since a compacted revision gets None (read all).

State directory: $PODNET_STATE_DIR/<cluster>, default /var/lib/podnet/<cluster>.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_ROOT_ENV = "PODNET_STATE_DIR"
DEFAULT_CLUSTER = "podnet"  # a cluster without --cluster
DEFAULT_STATE_ROOT = "/var/lib/podnet"
DB_NAME = "state.db"
# How long a writer waits for another writer's transaction (`apply` validates a whole
# cluster inside its transaction: ~0.5 s at 1,000 pods) before SQLite says "locked".
BUSY_TIMEOUT = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    rv INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name));
CREATE TABLE IF NOT EXISTS pod_ips (
    namespace TEXT NOT NULL, pod TEXT NOT NULL, node TEXT NOT NULL, ip TEXT NOT NULL UNIQUE,
    PRIMARY KEY (namespace, pod));
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY, ip TEXT NOT NULL UNIQUE, pod_cidr TEXT NOT NULL UNIQUE);
CREATE INDEX IF NOT EXISTS objects_by_rv ON objects (rv);
CREATE TABLE IF NOT EXISTS tombstones (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, rv INTEGER NOT NULL,
    PRIMARY KEY (kind, namespace, name));
CREATE INDEX IF NOT EXISTS tombstones_by_rv ON tombstones (rv);
"""

PodKey = tuple[str, str]


def state_root() -> Path:
    return Path(os.environ.get(STATE_ROOT_ENV) or DEFAULT_STATE_ROOT)


def state_dir(cluster: str) -> Path:
    return state_root() / cluster


class IpHeld(Exception):
    """The address is held by another pod."""


@dataclass(frozen=True, slots=True)
class Stored:
    kind: str
    namespace: str
    name: str
    rv: int
    body: dict[str, Any]


ObjectKey = tuple[str, str, str]  # kind, namespace ("" when cluster-scoped), name


@dataclass(frozen=True)
class Changes:
    """What `changes_since(since)` found, up to revision `until`."""

    since: int
    until: int
    changed: list[Stored]  # in revision order
    deleted: list[ObjectKey]


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    @classmethod
    def open(cls, directory: Path) -> Store:
        return cls(directory / DB_NAME)

    @staticmethod
    def exists(directory: Path) -> bool:
        return (directory / DB_NAME).exists()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; nested use joins the outer transaction."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every read inside sees the store as of the first one, however
        many writers commit meanwhile (WAL: readers never block writers, nor wait for them).
        For reading only: it ends with a rollback. Inside a write transaction, that
        transaction already is the snapshot."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")

    # --- meta -----------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, json.dumps(value, sort_keys=True)),
        )

    def revision(self) -> int:
        return int(self.get_meta("revision", 0))

    def _bump(self) -> int:
        rv = self.revision() + 1
        self.set_meta("revision", rv)
        return rv

    # --- objects --------------------------------------------------------------------
    def put(self, kind: str, namespace: str | None, name: str, body: dict[str, Any]) -> int:
        """Store an object; its resource version changes only when its body does."""
        ns = namespace or ""
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        with self.transaction():
            row = self._db.execute(
                "SELECT rv, body FROM objects WHERE kind=? AND namespace=? AND name=?",
                (kind, ns, name),
            ).fetchone()
            if row and row[1] == text:
                return int(row[0])
            rv = self._bump()
            self._db.execute(
                "INSERT INTO objects VALUES(?, ?, ?, ?, ?) ON CONFLICT(kind, namespace, name) "
                "DO UPDATE SET rv=excluded.rv, body=excluded.body",
                (kind, ns, name, rv, text),
            )
            return rv

    def get(self, kind: str, namespace: str | None, name: str) -> Stored | None:
        row = self._db.execute(
            "SELECT kind, namespace, name, rv, body FROM objects "
            "WHERE kind=? AND namespace=? AND name=?",
            (kind, namespace or "", name),
        ).fetchone()
        return _stored(row) if row else None

    def list(self, kind: str, namespace: str | None = None) -> list[Stored]:
        sql = "SELECT kind, namespace, name, rv, body FROM objects WHERE kind=?"
        args: tuple[str, ...] = (kind,)
        if namespace is not None:
            sql, args = sql + " AND namespace=?", (kind, namespace)
        return [_stored(r) for r in self._db.execute(sql + " ORDER BY namespace, name", args)]

    def versions(self, kind: str) -> tuple[tuple[str, str, int], ...]:
        """(namespace, name, resource version) of every object of a kind, in `list`'s
        order, without reading the bodies (a sync parses only those that changed)."""
        sql = "SELECT namespace, name, rv FROM objects WHERE kind=? ORDER BY namespace, name"
        return tuple((ns, name, int(rv)) for ns, name, rv in self._db.execute(sql, (kind,)))

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        with self.transaction():
            cur = self._db.execute(
                "DELETE FROM objects WHERE kind=? AND namespace=? AND name=?",
                (kind, namespace or "", name),
            )
            if cur.rowcount:
                rv = self._bump()
                self._db.execute(
                    "INSERT INTO tombstones VALUES(?, ?, ?, ?) ON CONFLICT(kind, namespace, name) "
                    "DO UPDATE SET rv=excluded.rv",
                    (kind, namespace or "", name, rv),
                )
                if kind == "Pod":
                    self.release(namespace or "", name)
            return bool(cur.rowcount)

    # --- watch ----------------------------------------------------------------------
    def changes_since(self, revision: int) -> Changes | None:
        """The objects created or changed after `revision` (bodies included) and the keys
        of those deleted after it and not created again; None when tombstones after
        `revision` may have been compacted away (the caller reads everything instead).
        An object deleted and created again after `revision` is among the changed ones."""
        if revision < int(self.get_meta("compacted", 0)) or revision > self.revision():
            return None
        rows = self._db.execute(
            "SELECT kind, namespace, name, rv, body FROM objects WHERE rv>? ORDER BY rv",
            (revision,),
        )
        changed = [_stored(r) for r in rows]
        gone = self._db.execute(
            "SELECT t.kind, t.namespace, t.name FROM tombstones t WHERE t.rv>? AND NOT EXISTS "
            "(SELECT 1 FROM objects o WHERE o.kind=t.kind AND o.namespace=t.namespace "
            "AND o.name=t.name)",
            (revision,),
        )
        return Changes(revision, self.revision(), changed, [tuple(r) for r in gone])

    def compact(self, revision: int) -> None:
        """Forget tombstones up to `revision` (every reader has seen them)."""
        if revision > int(self.get_meta("compacted", 0)):
            self._db.execute("DELETE FROM tombstones WHERE rv<=?", (revision,))
            self.set_meta("compacted", revision)

    # --- IPAM -----------------------------------------------------------------------
    def allocate(self, namespace: str, pod: str, node: str, ip: str) -> None:
        """Record that the pod holds `ip`; idempotent for the same pod, IpHeld otherwise."""
        with self.transaction():
            row = self._db.execute(
                "SELECT namespace, pod FROM pod_ips WHERE ip=?", (ip,)
            ).fetchone()
            if row and tuple(row) != (namespace, pod):
                raise IpHeld(f"{ip} is held by pod {row[0]}/{row[1]}")
            self._db.execute(
                "INSERT INTO pod_ips VALUES(?, ?, ?, ?) ON CONFLICT(namespace, pod) "
                "DO UPDATE SET node=excluded.node, ip=excluded.ip",
                (namespace, pod, node, ip),
            )

    def release(self, namespace: str, pod: str) -> bool:
        cur = self._db.execute("DELETE FROM pod_ips WHERE namespace=? AND pod=?", (namespace, pod))
        return bool(cur.rowcount)

    def held(self) -> dict[PodKey, tuple[str, str]]:
        """{(ns, pod): (node, ip)}: what `placement.place(held=...)` keeps."""
        rows = self._db.execute("SELECT namespace, pod, node, ip FROM pod_ips")
        return {(ns, pod): (node, ip) for ns, pod, node, ip in rows}

    def held_by(self, pods: Iterable[PodKey]) -> dict[PodKey, tuple[str, str]]:
        """`held()` of these pods only (a sync that patches its placement asks about the
        pods that changed)."""
        out = {}
        for ns, pod in pods:
            row = self._db.execute(
                "SELECT node, ip FROM pod_ips WHERE namespace=? AND pod=?", (ns, pod)
            ).fetchone()
            if row is not None:
                out[(ns, pod)] = (row[0], row[1])
        return out

    def set_node(self, name: str, ip: str, pod_cidr: str) -> None:
        self._db.execute(
            "INSERT INTO nodes VALUES(?, ?, ?) ON CONFLICT(name) "
            "DO UPDATE SET ip=excluded.ip, pod_cidr=excluded.pod_cidr",
            (name, ip, pod_cidr),
        )

    def delete_node(self, name: str) -> None:
        self._db.execute("DELETE FROM nodes WHERE name=?", (name,))

    def nodes(self) -> dict[str, tuple[str, str]]:
        """{node: (ip, podCIDR)}."""
        rows = self._db.execute("SELECT name, ip, pod_cidr FROM nodes ORDER BY name")
        return {name: (ip, cidr) for name, ip, cidr in rows}


def _stored(row: tuple[Any, ...]) -> Stored:
    kind, ns, name, rv, body = row
    return Stored(kind, ns, name, int(rv), json.loads(body))
