"""Network namespaces: where they live, how they are made and removed, and the one guarded
way into one. Every component that enters a namespace (the datapath's netlink sessions, the
workload stand-in's listeners and readiness checks, `podnet probe`, `podnet exec`) goes
through `entered_fd` here; there is no second guard to keep in step.

A network namespace belongs to a thread, not to a process: setns(2) with CLONE_NEWNET moves
the calling thread only, and a socket keeps the namespace it was created in for its whole
life. So a thread enters, creates what must live inside (a listening socket, a netlink
socket, a sysctl write), and comes straight back; the socket is then used from anywhere.
Python 3.11 has no os.setns, hence ctypes.

Named namespaces follow iproute2 (`ip netns add`): a file under NETNS_DIR bind-mounted from
the thread's /proc/thread-self/ns/net, on a shared mount so that other mount namespaces see
it. NETNS_DIR is spelled here and nowhere else.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # imported where used: `podnet get` lists namespaces and needs neither
    import ctypes
    import socket

NETNS_DIR = Path("/run/netns")  # iproute2's; /var/run is a link to /run on Debian
_THREAD_NETNS = "/proc/thread-self/ns/net"

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2
NETLINK_ROUTE = 0

T = TypeVar("T")


@functools.cache
def _c() -> ctypes.CDLL:
    """libc, loaded on first use: `podnet get` lists namespaces and never calls it."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


class NetnsError(OSError):
    """A namespace operation failed; carries errno and the namespace's name."""


class WrongNamespace(OSError):
    """A namespace file that is this thread's own (the host's) namespace, or a setns that
    did not land where it was asked to."""


def _check(rc: int, what: str, name: str = "") -> None:
    if rc != 0:
        import ctypes

        err = ctypes.get_errno()
        raise NetnsError(err, f"{what}: {os.strerror(err)}", name)


# --- libc calls that Python 3.11 lacks ---------------------------------------------------
def setns(fd: int, nstype: int) -> None:
    _check(_c().setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    _check(_c().unshare(flags), "unshare")


def mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    rc = _c().mount(
        source.encode(), target.encode(), fstype.encode() if fstype else None, flags, None
    )
    _check(rc, f"mount {source} on {target}")


def umount_detach(target: str) -> None:
    _check(_c().umount2(target.encode(), MNT_DETACH), f"umount {target}")


# --- where namespaces live -------------------------------------------------------------
def path(name: str) -> Path:
    """The file of the named namespace; ValueError for names that could escape NETNS_DIR."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"bad netns name {name!r}")
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return path(name).exists()


def listing(prefix: str = "") -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def open_fd(name: str) -> int:
    """An fd on the named namespace; FileNotFoundError when it is gone."""
    return os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)


def identity(name: str) -> tuple[int, int]:
    """(device, inode): a namespace deleted and re-created under the same name is another
    namespace, and sockets of the old one must be re-opened."""
    st = os.stat(path(name))
    return (st.st_dev, st.st_ino)


def inode(name: str) -> int:
    return identity(name)[1]


def remove(name: str) -> bool:
    """Unmount and unlink like `ip netns del`; False when it was already gone. The kernel
    frees the namespace (and its links, whose veth peers die with them) once unused."""
    p = path(name)
    _c().umount2(str(p).encode(), MNT_DETACH)  # EINVAL when not mounted: nothing to undo
    try:
        os.unlink(p)
    except FileNotFoundError:
        return False
    return True


# --- the one way in ----------------------------------------------------------------------
def _here() -> int:
    return os.stat(_THREAD_NETNS).st_ino


@contextmanager
def _home_kept() -> Iterator[int]:
    """Remember this thread's namespace and return to it afterwards, whatever the body did
    (entered another, or unshared a new one); yields its inode. Failing to come back would
    leave the thread in a pod's namespace: that error is never swallowed."""
    home = os.open(_THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield os.fstat(home).st_ino
        setns(home, CLONE_NEWNET)
    except BaseException:
        setns(home, CLONE_NEWNET)
        raise
    finally:
        os.close(home)


@contextmanager
def entered_fd(fd: int) -> Iterator[None]:
    """Run the body on this thread inside the namespace of `fd`; come back afterwards.

    The guard that keeps the host safe: a namespace file that is this thread's own
    namespace (a stale or wrong bind mount under a podnet name) is refused, so nothing is
    ever bound, configured or sent in the host's namespace by mistake; and after setns the
    thread must really be in the target."""
    target = os.fstat(fd).st_ino
    with _home_kept() as home:
        if target == home:
            raise WrongNamespace(f"refusing to enter namespace {target}: it is this process's own")
        setns(fd, CLONE_NEWNET)
        if _here() != target:  # pragma: no cover - the kernel broke its promise
            raise WrongNamespace(f"setns into namespace {target} did not land")
        yield


@contextmanager
def entered(name: str) -> Iterator[None]:
    fd = open_fd(name)
    try:
        with entered_fd(fd):
            yield
    finally:
        os.close(fd)


class Namespaces:
    """Keeps one fd per namespace open, so that opening thousands of sockets costs two
    setns(2) calls each and no path lookups. refresh() notices a namespace that was deleted
    or replaced under the same name (a re-created pod) and drops the stale fd."""

    def __init__(self) -> None:
        self._fds: dict[str, tuple[int, tuple[int, int]]] = {}

    def fd(self, name: str) -> int:
        if name not in self._fds:
            fd = open_fd(name)
            st = os.fstat(fd)
            self._fds[name] = (fd, (st.st_dev, st.st_ino))
        return self._fds[name][0]

    def refresh(self, name: str) -> tuple[int, int] | None:
        """The namespace's identity now, or None when it is gone."""
        try:
            ident = identity(name)
        except FileNotFoundError:
            self.forget(name)
            return None
        if name in self._fds and self._fds[name][1] != ident:
            self.forget(name)
        return ident

    @contextmanager
    def entered(self, name: str) -> Iterator[None]:
        with entered_fd(self.fd(name)):
            yield

    def socket(self, name: str, kind: int, proto: int = 0) -> socket.socket:
        """A non-blocking IPv4 socket that lives in `name`."""
        import socket

        with self.entered(name):
            s = socket.socket(socket.AF_INET, kind, proto)
        s.setblocking(False)
        return s

    def forget(self, name: str) -> None:
        entry = self._fds.pop(name, None)
        if entry is not None:
            os.close(entry[0])

    def close(self) -> None:
        for name in list(self._fds):
            self.forget(name)


# --- creating namespaces and working inside them, from one dedicated thread --------------
def _share_netns_dir(name: str) -> None:
    """As iproute2: make NETNS_DIR a shared mount (bind it onto itself the first time)."""
    d = str(NETNS_DIR).encode()
    if _c().mount(b"", d, b"none", MS_SHARED | MS_REC, None) != 0:
        _check(_c().mount(d, d, b"none", MS_BIND | MS_REC, None), f"bind {NETNS_DIR}", name)
        _check(_c().mount(b"", d, b"none", MS_SHARED | MS_REC, None), f"share {NETNS_DIR}", name)


def _create(name: str) -> bool:
    p = path(name)
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    _share_netns_dir(name)
    try:
        os.close(os.open(p, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    except FileExistsError:
        return False
    try:
        with _home_kept():
            _check(_c().unshare(CLONE_NEWNET), "unshare", name)
            src = _THREAD_NETNS.encode()
            _check(_c().mount(src, str(p).encode(), b"none", MS_BIND, None), "bind netns", name)
    except BaseException:
        os.unlink(p)
        raise
    return True


def _in(name: str, fn: Callable[[], T]) -> T:
    with entered(name):
        return fn()


def _write_sysctls(items: Iterable[tuple[str, str]]) -> int:
    changed = 0
    for key, value in items:
        f = "/proc/sys/" + key.replace(".", "/")  # per network namespace of the writing thread
        with open(f) as fh:
            if fh.read().strip() == value:
                continue
        with open(f, "w") as fh:
            fh.write(value)
        changed += 1
    return changed


class Worker:
    """The one thread of a batch job that enters namespaces (creating them, opening netlink
    sockets in them, writing their sysctls); the calling threads never move. Use as a
    context manager."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="podnet-netns")

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown()

    def _run(self, fn: Callable[..., T], *args: object) -> T:
        return self._pool.submit(fn, *args).result()

    def create(self, name: str) -> bool:
        """Create the named namespace; False when it already exists."""
        return self._run(_create, name)

    def netlink_socket(self, name: str) -> socket.socket:
        """A NETLINK_ROUTE socket bound to the namespace `name` (never the host's)."""
        import socket

        return self._run(
            _in,
            name,
            lambda: socket.socket(
                socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE
            ),
        )

    def prepare(self, name: str, items: Iterable[tuple[str, str]]) -> tuple[int, socket.socket]:
        """Write sysctls inside `name` and open a NETLINK_ROUTE socket there, in one trip
        to the worker thread: (sysctls changed, the socket)."""
        import socket

        values = tuple(items)

        def both() -> tuple[int, socket.socket]:
            changed = _write_sysctls(values)
            return changed, socket.socket(
                socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE
            )

        return self._run(_in, name, both)

    def sysctls(self, name: str, items: Iterable[tuple[str, str]]) -> int:
        """Write sysctls inside `name` (dotted keys); returns how many changed."""
        values = tuple(items)
        return self._run(_in, name, lambda: _write_sysctls(values))

    def call(self, name: str, fn: Callable[[], T]) -> T:
        """Run `fn` inside namespace `name` on the worker thread."""
        return self._run(_in, name, fn)
