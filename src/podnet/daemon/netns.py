"""Network namespaces for one thread: enter, create a socket, come back.

A network namespace belongs to a thread, not to a process, and a socket keeps the namespace
it was created in for its whole life. So the daemon switches the calling thread into a pod's
namespace, creates (and binds) the socket, and switches back at once; the event loop then
serves that socket like any other. Python 3.11 has no os.setns, hence ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from podnet.daemon.paths import netns_path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    rc = _libc.mount(
        source.encode(), target.encode(), fstype.encode() if fstype else None, flags, None
    )
    _check(rc, f"mount {source} on {target}")


def umount_detach(target: str) -> None:
    MNT_DETACH = 2
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def open_netns(netns: str) -> int:
    """An fd on /var/run/netns/<netns>; FileNotFoundError when the namespace is gone."""
    return os.open(netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)


def netns_identity(netns: str) -> tuple[int, int]:
    """(device, inode) of the namespace: a namespace deleted and re-created under the same
    name is a different namespace, and sockets of the old one must be re-opened."""
    st = os.stat(netns_path(netns))
    return (st.st_dev, st.st_ino)


def _own_netns_fd() -> int:
    tid = threading.get_native_id()
    return os.open(f"/proc/self/task/{tid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)


class WrongNamespace(OSError):
    """A namespace file that is our own (the host's) namespace, or a setns that did not land."""


def _here() -> int:
    return os.stat(f"/proc/self/task/{threading.get_native_id()}/ns/net").st_ino


@contextmanager
def entered_fd(fd: int) -> Iterator[None]:
    """Run the body on this thread inside the namespace of `fd`; come back afterwards.

    The guard that keeps the host safe: a namespace file that is this thread's own
    namespace (a stale or wrong bind mount under a podnet name) is refused, so nothing is
    ever bound or sent in the host's namespace by mistake; and after setns the thread must
    really be in the target."""
    home = _own_netns_fd()
    target = os.fstat(fd).st_ino
    try:
        if target == os.fstat(home).st_ino:
            raise WrongNamespace(f"refusing to enter namespace {target}: it is this process's own")
        setns(fd, CLONE_NEWNET)
        try:
            if _here() != target:  # pragma: no cover - the kernel broke its promise
                raise WrongNamespace(f"setns into namespace {target} did not land")
            yield
        finally:
            # Failing to come back would leave the thread in a pod's namespace: fatal.
            setns(home, CLONE_NEWNET)
    finally:
        os.close(home)


@contextmanager
def entered(netns: str) -> Iterator[None]:
    fd = open_netns(netns)
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

    def fd(self, netns: str) -> int:
        if netns not in self._fds:
            fd = open_netns(netns)
            st = os.fstat(fd)
            self._fds[netns] = (fd, (st.st_dev, st.st_ino))
        return self._fds[netns][0]

    def refresh(self, netns: str) -> tuple[int, int] | None:
        """The namespace's identity now, or None when it is gone."""
        try:
            ident = netns_identity(netns)
        except FileNotFoundError:
            self.forget(netns)
            return None
        if netns in self._fds and self._fds[netns][1] != ident:
            self.forget(netns)
        return ident

    @contextmanager
    def entered(self, netns: str) -> Iterator[None]:
        with entered_fd(self.fd(netns)):
            yield

    def socket(self, netns: str, kind: int, proto: int = 0) -> socket.socket:
        """A non-blocking IPv4 socket that lives in `netns`."""
        with self.entered(netns):
            s = socket.socket(socket.AF_INET, kind, proto)
        s.setblocking(False)
        return s

    def forget(self, netns: str) -> None:
        entry = self._fds.pop(netns, None)
        if entry is not None:
            os.close(entry[0])

    def close(self) -> None:
        for name in list(self._fds):
            self.forget(name)
