"""The batched rtnetlink encoder: the kernel takes its routes, neighbours and FDB entries as
`ip` shows them, and a refusal names the request. Needs root."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from podnet.datapath import netns, rtnl_batch

pytestmark = pytest.mark.datapath


@pytest.fixture
def ns() -> Iterator[str]:
    name = f"podnet.rtnl{uuid.uuid4().hex[:6]}.node.n1"
    with netns.Worker() as worker:
        worker.create(name)
    try:
        for cmd in (
            "ip link add v0 type veth peer name v1",
            "ip link set v0 up",
            "ip link set v1 up",
            "ip addr add 172.18.0.2/16 dev v0",
            "ip link add flannel.1 type vxlan id 1 dstport 8472 local 172.18.0.2 nolearning",
        ):
            ip(name, *cmd.split())
        yield name
    finally:
        netns.remove(name)


def ip(name: str, *args: str) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", name, *args], check=True, capture_output=True, text=True
    )
    return out.stdout


def test_routes_neighbours_and_fdb_as_ip_shows_them(ns):
    v0 = int(ip(ns, "cat", "/sys/class/net/v0/ifindex"))
    vx = int(ip(ns, "cat", "/sys/class/net/flannel.1/ifindex"))
    many = [rtnl_batch.route(f"10.{i // 250}.{i % 250}.0/24", v0, "172.18.0.3") for i in range(300)]
    with netns.Worker() as worker:
        sock = worker.netlink_socket(ns)
    try:
        rtnl_batch.send(
            sock,
            [
                rtnl_batch.route("10.244.0.2/32", v0, src="172.18.0.2"),
                rtnl_batch.route("0.0.0.0/0", v0, "169.254.1.1", onlink=True),
                *many,
                rtnl_batch.neighbour("10.244.1.0", "aa:bb:cc:00:00:01", v0),
                rtnl_batch.fdb("aa:bb:cc:00:00:01", "172.18.0.3", vx),
            ],
        )
        routes = ip(ns, "ip", "route")
        assert "10.244.0.2 dev v0 proto static src 172.18.0.2" in routes
        assert "default via 169.254.1.1 dev v0 proto static onlink" in routes
        assert "10.1.49.0/24 via 172.18.0.3 dev v0 proto static" in routes
        assert "10.244.1.0 dev v0 lladdr aa:bb:cc:00:00:01 PERMANENT" in ip(ns, "ip", "neigh")
        fdb = ip(ns, "bridge", "fdb", "show", "dev", "flannel.1")
        assert "aa:bb:cc:00:00:01 dst 172.18.0.3 self permanent" in fdb
        with pytest.raises(rtnl_batch.BatchError, match=r"route 10\.9\.0\.0/24"):
            rtnl_batch.send(sock, [rtnl_batch.route("10.9.0.0/24", 999, "172.18.0.3")])
    finally:
        sock.close()


def test_links_and_addresses_as_ip_shows_them(ns):
    other = ns.replace(".node.n1", ".pod.p1")
    with netns.Worker() as worker:
        worker.create(other)
        sock = worker.netlink_socket(ns)
    fd = netns.open_fd(other)
    try:
        peer = rtnl_batch.veth_peer("eth0", fd, mac="0a:00:00:00:00:02", mtu=1450)
        rtnl_batch.send(
            sock,
            [
                rtnl_batch.link_set(1, up=True),
                rtnl_batch.link_add("br0", "bridge", up=True),
                rtnl_batch.link_add("w0", "veth", peer, mac="ee:ee:ee:ee:ee:ee", up=True),
            ],
        )
        index = rtnl_batch.link_indexes(sock)
        assert {"lo", "v0", "v1", "flannel.1", "br0", "w0"} <= index.keys()
        assert index["lo"] == 1
        rtnl_batch.send(
            sock,
            [
                rtnl_batch.link_set(index["v1"], master=index["br0"]),
                rtnl_batch.address("10.244.0.1/32", index["w0"]),
            ],
        )
        w0 = ip(ns, "ip", "-d", "link", "show", "w0")
        assert "ee:ee:ee:ee:ee:ee" in w0 and ",UP" in w0
        assert "master br0" in ip(ns, "ip", "link", "show", "v1")
        assert "inet 10.244.0.1/32 scope global w0" in ip(ns, "ip", "addr", "show", "w0")
        eth0 = ip(other, "ip", "link", "show", "eth0")
        assert "mtu 1450" in eth0 and "0a:00:00:00:00:02" in eth0 and "state DOWN" in eth0
        with pytest.raises(rtnl_batch.BatchError, match="link add w0"):
            rtnl_batch.send(sock, [rtnl_batch.link_add("w0", "bridge")])
    finally:
        os.close(fd)
        sock.close()
        netns.remove(other)


def test_an_ecmp_route_is_written_and_kept_as_it_is(ns):
    """A LoadBalancer address routed to several nodes (render/load_balancers): one route
    with a next hop per node; a second sync finds it as wanted and changes nothing."""
    from podnet.datapath.session import Session
    from podnet.render.netplan import Route

    want = (Route("172.18.255.1/32", "v0", nexthops=("172.18.0.3", "172.18.0.4")),)
    with netns.Worker() as worker:
        with Session(worker, ns) as s:
            s.sync_routes(want)
            assert s.changes == 1
        routes = ip(ns, "ip", "route")
        assert "nexthop via 172.18.0.3 dev v0" in routes and "nexthop via 172.18.0.4" in routes
        with Session(worker, ns) as s:
            s.sync_routes(want)
            assert s.changes == 0
        with Session(worker, ns) as s:  # one node fewer: the route is replaced
            s.sync_routes((Route("172.18.255.1/32", "v0", via="172.18.0.3"),))
        assert "172.18.255.1 via 172.18.0.3 dev v0" in ip(ns, "ip", "route")
