"""Test helpers, in one place (private modules behind this surface; nothing in production
code imports them, and nothing is computed on import):

- builders of manifests and engines (`pod("x/a", labels=...)`, `engine(...)`);
- a packet tracer that walks a rendered nftables table (the second opinion on the
  renderer) and an in-memory nft runner (`FakeRunner`);
- live helpers: run the CLI, serve and connect inside namespaces, snapshot the host's own
  namespace, and a small hand-wired topology of namespaces for the workload stand-in.
"""

from podnet.testing._builders import cluster, engine, namespace, pod, policy
from podnet.testing._live import (
    connect_seen,
    in_netns,
    podnet,
    root_snapshot,
    root_sysctls,
    serving,
    unique_cluster,
)
from podnet.testing._nft_runner import FakeRunner
from podnet.testing._nft_trace import Packet, Tracer, trace
from podnet.testing._topology import (
    Live,
    Topology,
    connect,
    ip,
    live_cluster,
    pod_entry,
    read_all,
    runtime_doc,
    udp_socket,
)

__all__ = [
    "FakeRunner",
    "Live",
    "Packet",
    "Topology",
    "Tracer",
    "cluster",
    "connect",
    "connect_seen",
    "engine",
    "in_netns",
    "ip",
    "live_cluster",
    "namespace",
    "pod",
    "pod_entry",
    "podnet",
    "policy",
    "read_all",
    "root_snapshot",
    "root_sysctls",
    "runtime_doc",
    "serving",
    "trace",
    "udp_socket",
    "unique_cluster",
]
