"""Render the network of a live cluster: fabric, internet, nodes, pods (docs/datapath.md).

- fabric: a bridge, the node network's switch; it also routes between the node network and
  the outside-clients network (one "router on a stick", so it sends no ICMP redirects).
- node: `eth0` on the fabric with the node IP; a /32 route per local pod through the pod's
  veth (Calico/ptp style), and towards other nodes' podCIDRs either host-gw routes via their
  node IP or a flannel-style VXLAN overlay (VNI 1, UDP 8472, neighbour + FDB entries
  programmed from the model, no learning).
- pod: `eth0` holding the pod IP as /32, default route via the link-local gateway
  169.254.1.1 that the node-side veth answers for with a permanent neighbour entry.
- internet: a client on the fabric in the documentation range, routed to the node network.
- Services: each node routes the service CIDR towards the fabric (a ClusterIP is never a
  real destination: NAT rewrites it first, and a port without endpoints is rejected before
  the route is used; without a route, the node's own connections would fail in the route
  lookup, before any rule); the fabric routes each LoadBalancer address to the nodes that
  may answer it, one ECMP route, as MetalLB's BGP mode announces it (every node for
  externalTrafficPolicy Cluster, the nodes with a local endpoint for Local).
"""

from __future__ import annotations

import functools
import ipaddress

from podnet.model.cluster import Cluster
from podnet.model.errors import InputError, Problem
from podnet.model.kinds import identity
from podnet.render import kernel_names
from podnet.render.load_balancers import external_routes
from podnet.render.netplan import (
    Address,
    Fdb,
    Link,
    Neighbour,
    NetnsPlan,
    NetPlan,
    Peer,
    Route,
    Vxlan,
)
from podnet.state.network import MODES, NetworkConfig
from podnet.state.placement import Placement, pod_key

VXLAN_VNI = 1  # flannel's defaults
VXLAN_PORT = 8472
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
UNDERLAY_MTU = 1500


def fabric_ip(net: NetworkConfig) -> str:
    return str(_host(net.node_network, 0))


def fabric_internet_ip(net: NetworkConfig) -> str:
    return str(_host(net.internet_network, 0))


def internet_ip(net: NetworkConfig) -> str:
    return str(_host(net.internet_network, 1))


def _host(network: ipaddress.IPv4Network, i: int) -> ipaddress.IPv4Address:
    return network.network_address + 1 + i


def render(
    cluster: Cluster,
    placement: Placement,
    cluster_name: str,
    mode: str,
    net: NetworkConfig | None = None,
) -> NetPlan:
    """The whole desired datapath; raises InputError naming any object it cannot name."""
    net = net or NetworkConfig()
    if mode not in MODES:
        raise InputError([Problem(None, "", "", f"unknown mode {mode!r}; one of {MODES}")])
    reason = kernel_names.check_cluster_name(cluster_name)
    if reason:
        raise InputError([Problem(None, "", "", reason)])
    external = external_routes(cluster, placement.node_ip)
    # External addresses outside the node network (externalIPs): the internet and the
    # nodes route them to the fabric, which routes them to the nodes that answer them
    # (the node network's own addresses are reached on the fabric's bridge already).
    beyond = tuple(
        sorted(ip for ip in external if ipaddress.IPv4Address(ip) not in net.node_network)
    )
    namespaces = [
        _fabric(cluster, cluster_name, net, external),
        _internet(cluster_name, net, beyond),
    ]
    # Each node's own pods, grouped once (in key order): per node, a scan of every pod
    # was quadratic in the cluster's size (256 nodes x 5,000 pods).
    host_net = {pod_key(p) for p in cluster.pods if p.spec.host_network}
    local: dict[str, list[tuple[str, str]]] = {}
    for key, pod_node in sorted(placement.pod_node.items()):
        if key not in host_net:  # hostNetwork pods live in the node's netns
            local.setdefault(pod_node, []).append(key)
    namespaces += [
        _node(cluster, placement, cluster_name, mode, net, n, local.get(n, []), beyond)
        for n in _nodes(cluster)
    ]
    mtu = UNDERLAY_MTU - VXLAN_OVERHEAD if mode == "vxlan" else None
    for p in cluster.pods:
        if not p.spec.host_network:
            ns, name = pod_key(p)
            mac = kernel_names.pod_mac(cluster_name, ns, name)
            namespaces.append(_pod(cluster_name, ns, name, placement.pod_ip[(ns, name)], mac, mtu))
    plan = NetPlan(cluster_name, mode, tuple(namespaces))
    _check_unique(cluster, placement, plan)
    return plan


def _nodes(cluster: Cluster) -> list[str]:
    return [n.metadata.name for n in cluster.nodes]


def _fabric(
    cluster: Cluster, cluster_name: str, net: NetworkConfig, lbs: dict[str, tuple[str, ...]]
) -> NetnsPlan:
    links = [Link(kernel_names.FABRIC_BRIDGE, "bridge")]
    for node in _nodes(cluster):
        peer = Peer(kernel_names.node_netns(cluster_name, node), kernel_names.POD_IF)
        links.append(
            Link(kernel_names.node_port(node), "veth", peer, master=kernel_names.FABRIC_BRIDGE)
        )
    inet = Peer(kernel_names.internet_netns(cluster_name), kernel_names.POD_IF)
    links.append(Link(kernel_names.INTERNET_PORT, "veth", inet, master=kernel_names.FABRIC_BRIDGE))
    bridge = kernel_names.FABRIC_BRIDGE
    return NetnsPlan(
        name=kernel_names.fabric_netns(cluster_name),
        role="fabric",
        owner="",
        sysctls=(
            ("net.ipv4.ip_forward", "1"),
            # The fabric routes node network <-> internet on one bridge port; a redirect
            # would tell a node to reach the internet net directly, which it cannot.
            ("net.ipv4.conf.all.send_redirects", "0"),
            ("net.ipv4.conf.default.send_redirects", "0"),
        ),
        links=tuple(links),
        addresses=(
            Address(bridge, f"{fabric_ip(net)}/{net.node_network.prefixlen}"),
            Address(bridge, f"{fabric_internet_ip(net)}/{net.internet_network.prefixlen}"),
        ),
        routes=tuple(
            Route(f"{ip}/32", bridge, via=gws[0])
            if len(gws) == 1
            else Route(f"{ip}/32", bridge, nexthops=gws)
            for ip, gws in sorted(lbs.items())
        ),
    )


def _internet(cluster_name: str, net: NetworkConfig, beyond: tuple[str, ...]) -> NetnsPlan:
    return NetnsPlan(
        name=kernel_names.internet_netns(cluster_name),
        role="internet",
        owner="",
        links=(Link(kernel_names.POD_IF, "peer"),),
        addresses=(
            Address(kernel_names.POD_IF, f"{internet_ip(net)}/{net.internet_network.prefixlen}"),
        ),
        routes=(
            Route(str(net.node_network), kernel_names.POD_IF, via=fabric_internet_ip(net)),
            *(Route(f"{ip}/32", kernel_names.POD_IF, via=fabric_internet_ip(net)) for ip in beyond),
        ),
    )


def _node(
    cluster: Cluster,
    placement: Placement,
    cluster_name: str,
    mode: str,
    net: NetworkConfig,
    node: str,
    pods: list[tuple[str, str]],
    beyond: tuple[str, ...] = (),
) -> NetnsPlan:
    """A node's namespace; `pods`: the keys of its pods with a namespace of their own;
    `beyond`: the external addresses outside the node network, routed to the fabric so
    that the node's own connections pass the route lookup before NAT (as the service
    CIDR)."""
    ip = placement.node_ip[node]
    mtu = UNDERLAY_MTU - VXLAN_OVERHEAD if mode == "vxlan" else None
    links = [Link(kernel_names.POD_IF, "peer")]
    routes = [
        Route(str(net.internet_network), kernel_names.POD_IF, via=fabric_ip(net)),
        Route(str(net.service_cidr), kernel_names.POD_IF, via=fabric_ip(net)),
        *(Route(f"{ip}/32", kernel_names.POD_IF, via=fabric_ip(net)) for ip in beyond),
    ]
    neighbours: list[Neighbour] = []
    fdb: list[Fdb] = []
    for key in pods:
        veth = kernel_names.pod_veth(*key)
        mac = kernel_names.pod_mac(cluster_name, *key)
        peer = Peer(
            kernel_names.pod_netns(cluster_name, *key), kernel_names.POD_IF, mac=mac, mtu=mtu
        )
        links.append(Link(veth, "veth", peer, mac=kernel_names.GATEWAY_MAC, mtu=mtu))
        # src: a node reaching its pods is seen with its node IP (requirement 2).
        routes.append(Route(f"{placement.pod_ip[key]}/32", veth, src=ip))
        neighbours.append(Neighbour(veth, placement.pod_ip[key], mac))
    others = [n for n in _nodes(cluster) if n != node]
    if mode == "vxlan" and others:
        links.append(
            Link(
                kernel_names.VXLAN_IF,
                "vxlan",
                mac=kernel_names.vtep_mac(cluster_name, node),
                mtu=mtu,
                vxlan=Vxlan(VXLAN_VNI, VXLAN_PORT, ip, kernel_names.POD_IF),
            )
        )
    for other in others:
        cidr = _cidr_text(placement.node_cidr[other])
        if mode == "host-gw":
            routes.append(Route(cidr, kernel_names.POD_IF, via=placement.node_ip[other]))
            continue
        # flannel: the remote podCIDR's network address stands for the remote VTEP; a
        # permanent neighbour gives its MAC and the FDB maps that MAC to the node IP.
        gw, mac = cidr.partition("/")[0], kernel_names.vtep_mac(cluster_name, other)
        routes.append(Route(cidr, kernel_names.VXLAN_IF, via=gw, src=ip, onlink=True))
        neighbours.append(Neighbour(kernel_names.VXLAN_IF, gw, mac))
        fdb.append(Fdb(kernel_names.VXLAN_IF, mac, placement.node_ip[other]))
    return NetnsPlan(
        name=kernel_names.node_netns(cluster_name, node),
        role="node",
        owner=node,
        sysctls=(
            ("net.ipv4.ip_forward", "1"),
            # NetworkPolicy rejects with ICMP from this namespace; the default rate limit
            # (icmp_ratemask covers destination-unreachable) would silence all but a few
            # per peer, and blocked connections would wait for a timeout instead of failing.
            ("net.ipv4.icmp_ratemask", "0"),
        ),
        links=tuple(links),
        addresses=(Address(kernel_names.POD_IF, f"{ip}/{net.node_network.prefixlen}"),),
        routes=tuple(routes),
        neighbours=tuple(neighbours),
        fdb=tuple(fdb),
    )


@functools.lru_cache(maxsize=4096)
def _cidr_text(cidr: ipaddress.IPv4Network) -> str:
    """Every node routes to every other podCIDR: 65,000 str() of a network at 256 nodes."""
    return str(cidr)


def _pod(cluster_name: str, ns: str, pod: str, ip: str, mac: str, mtu: int | None) -> NetnsPlan:
    return NetnsPlan(
        name=kernel_names.pod_netns(cluster_name, ns, pod),
        role="pod",
        owner=f"{ns}/{pod}",
        links=(Link(kernel_names.POD_IF, "peer", mac=mac, mtu=mtu),),
        addresses=(Address(kernel_names.POD_IF, f"{ip}/32"),),
        routes=(Route("0.0.0.0/0", kernel_names.POD_IF, via=kernel_names.GATEWAY_IP, onlink=True),),
        neighbours=(
            Neighbour(kernel_names.POD_IF, kernel_names.GATEWAY_IP, kernel_names.GATEWAY_MAC),
        ),
    )


def _check_unique(cluster: Cluster, placement: Placement, plan: NetPlan) -> None:
    """Hashed names could collide; refuse (naming both objects) instead of merging them."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for ns in plan.namespaces:
        if ns.name in seen:
            problems.append(_clash(cluster, ns.owner, seen[ns.name], f"netns {ns.name}"))
        seen[ns.name] = ns.owner
        links: dict[str, str] = {}
        for link in ns.links:
            owner = link.peer.netns if link.peer else link.name
            if link.name in links:
                problems.append(_clash(cluster, owner, links[link.name], f"link {link.name}"))
            links[link.name] = owner
    if problems:
        raise InputError(problems)


def _clash(cluster: Cluster, a: str, b: str, what: str) -> Problem:
    ident = identity("Pod", *a.split("/", 1)) if "/" in a else a
    origin = cluster.origins.get(ident)
    return Problem(origin, ident, "metadata.name", f"its kernel name {what} collides with {b}")
