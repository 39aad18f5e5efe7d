"""The host-safety guards of namespace entry and teardown (no root needed to refuse)."""

from __future__ import annotations

import os

import pytest

from podnet.datapath.netns import WrongNamespace, entered_fd
from podnet.testing import root_sysctls


def test_entering_our_own_namespace_is_refused() -> None:
    """A podnet-named netns file that is really the host's namespace must never be used:
    sockets would be bound, and probes sent, in the host's namespace."""
    fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(WrongNamespace), entered_fd(fd):
            pytest.fail("entered the host's own namespace")
    finally:
        os.close(fd)


def test_safety_checks_cover_every_sysctl_podnet_writes() -> None:
    assert "net.ipv4.ip_forward" in root_sysctls()
    assert "net.ipv4.icmp_ratemask" in root_sysctls()
