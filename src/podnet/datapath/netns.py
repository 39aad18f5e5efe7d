"""Named network namespaces, entered only by one dedicated thread.

A network namespace belongs to a thread, not to a process (setns(2) with CLONE_NEWNET moves
the calling thread). So the process never moves: one worker thread enters a namespace, does
the one thing that must happen inside it (create it, open a netlink socket in it, write its
sysctls), checks by inode that it really was inside, and goes home before the next task. A
netlink socket stays bound to the namespace it was created in, so every later request on it
runs from the main thread.

Named namespaces follow iproute2 (`ip netns add`): a file under /run/netns bind-mounted from
the thread's /proc/thread-self/ns/net, on a shared mount so that other mount namespaces see it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2
NETLINK_ROUTE = 0

T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(OSError):
    pass


def _check(rc: int, what: str, name: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise NetnsError(err, f"{what}: {os.strerror(err)}", name)


def path(name: str) -> str:
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"bad netns name {name!r}")
    return os.path.join(NETNS_DIR, name)


def listing(prefix: str = "") -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def inode(name: str) -> int:
    return os.stat(path(name)).st_ino


def remove(name: str) -> bool:
    """Unmount and unlink like `ip netns del`; False when it was already gone. The kernel
    frees the namespace (and its links, whose veth peers die with them) once unused."""
    p = path(name)
    _libc.umount2(p.encode(), MNT_DETACH)  # EINVAL when not mounted: nothing to undo
    try:
        os.unlink(p)
    except FileNotFoundError:
        return False
    return True


class Worker:
    """The one thread that enters namespaces. Use as a context manager."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="podnet-netns")
        self._home_fd = -1
        self._home_ino = 0
        self._run(self._init_home)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.submit(self._close_home).result()
        self._pool.shutdown()

    def _run(self, fn: Callable[..., T], *args: object) -> T:
        return self._pool.submit(fn, *args).result()

    # --- on the worker thread -------------------------------------------------------
    def _init_home(self) -> None:
        self._home_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._home_ino = os.fstat(self._home_fd).st_ino

    def _close_home(self) -> None:
        os.close(self._home_fd)

    def _here(self) -> int:
        return os.stat("/proc/thread-self/ns/net").st_ino

    def _go_home(self) -> None:
        _check(_libc.setns(self._home_fd, CLONE_NEWNET), "setns home", "")
        if self._here() != self._home_ino:  # pragma: no cover - kernel broke its promise
            raise NetnsError(errno.EIO, "worker thread failed to return home", "")

    def _enter(self, name: str) -> None:
        fd = os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), "setns", name)
            # The guard that keeps the host safe: we are in `name`, and `name` is not home.
            here = self._here()
            if here != os.fstat(fd).st_ino or here == self._home_ino:
                self._go_home()
                raise NetnsError(errno.EIO, "not inside the expected namespace", name)
        finally:
            os.close(fd)

    def _in(self, name: str, fn: Callable[[], T]) -> T:
        self._enter(name)
        try:
            return fn()
        finally:
            self._go_home()

    def _create(self, name: str) -> bool:
        p = path(name)
        os.makedirs(NETNS_DIR, exist_ok=True)
        # As iproute2: make /run/netns a shared mount (bind it onto itself the first time).
        if _libc.mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None) != 0:
            _check(
                _libc.mount(
                    NETNS_DIR.encode(), NETNS_DIR.encode(), b"none", MS_BIND | MS_REC, None
                ),
                "bind /run/netns",
                name,
            )
            _check(
                _libc.mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None),
                "share /run/netns",
                name,
            )
        try:
            os.close(os.open(p, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
        except FileExistsError:
            return False
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare", name)
            try:
                src = b"/proc/thread-self/ns/net"
                _check(_libc.mount(src, p.encode(), b"none", MS_BIND, None), "bind netns", name)
            finally:
                self._go_home()
        except BaseException:
            os.unlink(p)
            raise
        return True

    def _socket(self, name: str) -> socket.socket:
        return self._in(
            name,
            lambda: socket.socket(
                socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE
            ),
        )

    def _sysctls(self, name: str, items: Iterable[tuple[str, str]]) -> int:
        def write() -> int:
            changed = 0
            for key, value in items:
                f = "/proc/sys/" + key.replace(".", "/")
                with open(f) as fh:
                    if fh.read().strip() == value:
                        continue
                with open(f, "w") as fh:
                    fh.write(value)
                changed += 1
            return changed

        return self._in(name, write)

    # --- public: each call runs on the worker and returns with it home ---------------
    def create(self, name: str) -> bool:
        """Create the named namespace; False when it already exists."""
        return self._run(self._create, name)

    def netlink_socket(self, name: str) -> socket.socket:
        """A NETLINK_ROUTE socket bound to the namespace `name` (never the host's)."""
        return self._run(self._socket, name)

    def sysctls(self, name: str, items: Iterable[tuple[str, str]]) -> int:
        """Write sysctls inside `name` (dotted keys); returns how many changed."""
        return self._run(self._sysctls, name, tuple(items))

    def call(self, name: str, fn: Callable[[], T]) -> T:
        """Run `fn` inside namespace `name` on the worker thread."""
        return self._run(self._in, name, fn)
