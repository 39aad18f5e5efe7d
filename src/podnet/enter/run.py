"""Run a command inside a pod's (or node's) network namespace, kubelet-style: its own
/etc/resolv.conf, /etc/hosts (pods) and hostname, on a private mount and UTS namespace, then
exec the command (so its exit status, signals and terminal are the command's own).

`python -m podnet.enter --netns NS --resolv FILE [--hosts FILE] --hostname H -- CMD...`

A separate, fresh interpreter on purpose: unshare(CLONE_NEWNS) fails with EINVAL in a
multi-threaded process, and the podnet CLI is one once numpy has started its BLAS threads.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import NoReturn

from podnet import startup
from podnet.datapath.netns import (
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWUTS,
    mount,
    open_fd,
    setns,
    umount_detach,
    unshare,
)

MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 0x80000

EXIT_ERROR = 2  # podnet's "bad input" status; the command's own status otherwise
EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND = 126, 127  # as shells and container runtimes report


def argv_for(
    netns: str, resolv: str, hostname: str, command: list[str], hosts: str | None = None
) -> list[str]:
    argv = [sys.executable, "-m", "podnet.enter", "--netns", netns, "--resolv", resolv]
    if hosts is not None:
        argv += ["--hosts", hosts]
    return [*argv, "--hostname", hostname, "--", *command]


def enter(netns: str, resolv: str, hostname: str, hosts: str | None = None) -> None:
    net = open_fd(netns)
    unshare(CLONE_NEWNS | CLONE_NEWUTS)
    # Slave, not private: host mounts still propagate in, ours never propagate out.
    mount("none", "/", None, MS_REC | MS_SLAVE)
    setns(net, CLONE_NEWNET)
    os.close(net)
    # sysfs shows the network namespace of whoever mounted it: remount it, so that
    # /sys/class/net lists the pod's interfaces (what `ip netns exec` does too).
    try:
        umount_detach("/sys")
        mount(netns, "/sys", "sysfs", 0)
    except OSError:
        pass  # a read-only or absent /sys changes nothing that matters to the command
    mount(resolv, "/etc/resolv.conf", None, MS_BIND)
    if hosts is not None:
        mount(hosts, "/etc/hosts", None, MS_BIND)
    socket.sethostname(hostname)


def main(argv: list[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(prog="python -m podnet.enter.run")
    parser.add_argument("--netns", required=True)
    parser.add_argument("--resolv", required=True)
    parser.add_argument("--hosts", default=None)
    parser.add_argument("--hostname", required=True)
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    try:
        enter(args.netns, args.resolv, args.hostname, args.hosts)
    except OSError as e:
        print(f"error: cannot enter namespace {args.netns}: {e.strerror or e}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    startup.user_environment()
    try:
        os.execvp(args.command[0], args.command)
    except FileNotFoundError:
        print(f"error: {args.command[0]}: command not found", file=sys.stderr)
        sys.exit(EXIT_NOT_FOUND)
    except OSError as e:
        print(f"error: {args.command[0]}: {e.strerror or e}", file=sys.stderr)
        sys.exit(EXIT_NOT_EXECUTABLE)


if __name__ == "__main__":
    main()
