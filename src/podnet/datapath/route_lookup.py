"""Ask a namespace's kernel how it routes an address (`ip route get`, through pyroute2 on a
netlink socket opened inside it by the netns worker) and what its links are called: what
`podnet trace` prints as the way from one node to the next."""

from __future__ import annotations

from dataclasses import dataclass

from pyroute2 import IPRoute

from podnet.datapath import netns


@dataclass(frozen=True, slots=True)
class RouteHop:
    dst: str
    dev: str  # the outgoing link
    via: str | None  # the gateway (host-gw: the next node; vxlan: its flannel.1 address)
    src: str | None


def route_get(name: str, dst: str) -> RouteHop:
    """The kernel's own answer in namespace `name` for `dst` (OSError when it has none)."""
    with netns.Worker() as worker:
        sock = worker.netlink_socket(name)
    ipr = IPRoute(fileno=sock.detach())
    try:
        (msg,) = ipr.route("get", dst=dst)
        oif = msg.get("RTA_OIF")
        links = {int(m["index"]): str(m.get("IFLA_IFNAME")) for m in ipr.get_links()}
        return RouteHop(
            dst,
            links.get(int(oif), f"if{oif}") if oif is not None else "?",
            msg.get("RTA_GATEWAY"),
            msg.get("RTA_PREFSRC"),
        )
    finally:
        ipr.close()


def link_names(name: str) -> dict[int, str]:
    """{ifindex: name} of namespace `name` (trace events carry interface indexes)."""
    with netns.Worker() as worker:
        sock = worker.netlink_socket(name)
    ipr = IPRoute(fileno=sock.detach())
    try:
        return {int(m["index"]): str(m.get("IFLA_IFNAME")) for m in ipr.get_links()}
    finally:
        ipr.close()
