"""Test helpers, in one place (private modules behind this surface; nothing in production
code imports them, and nothing is computed on import):

- builders of manifests and engines (`pod("x/a", labels=...)`, `engine(...)`);
- a packet tracer that walks a rendered nftables table (the second opinion on the
  renderer) and an in-memory nft runner (`FakeRunner`);
- live helpers: run the CLI, bring a real cluster up from manifests with `podnet up` and
  always down again (`live_cluster`), serve and connect inside its namespaces, snapshot the
  host's own namespace;
- runtime.json documents built by hand, for pure tests of its readers;
- a real browser (Debian's chromium through Playwright) for the pages podnet writes/serves.
"""

from podnet.testing._apply import apply_outcome, store_contents
from podnet.testing._browser import Browser, browser, dashboard, free_port, screenshot
from podnet.testing._builders import (
    backend,
    cluster,
    engine,
    example_docs,
    ingress,
    namespace,
    pod,
    policy,
    rule,
    service,
)
from podnet.testing._clusters import Live, live_cluster
from podnet.testing._ingress_cases import HOST_ROWS, PATH_ROWS, PathRow, route
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
from podnet.testing._nft_trace import Nat, Packet, Tracer, trace
from podnet.testing._runtime_docs import pod_entry, runtime_doc
from podnet.testing._sockets import connect, read_all, udp_socket
from podnet.testing._traffic import ConnectLoop

__all__ = [
    "HOST_ROWS",
    "PATH_ROWS",
    "Browser",
    "ConnectLoop",
    "FakeRunner",
    "Live",
    "Nat",
    "Packet",
    "PathRow",
    "Tracer",
    "apply_outcome",
    "backend",
    "browser",
    "cluster",
    "connect",
    "connect_seen",
    "dashboard",
    "engine",
    "example_docs",
    "free_port",
    "in_netns",
    "ingress",
    "live_cluster",
    "namespace",
    "pod",
    "pod_entry",
    "podnet",
    "policy",
    "read_all",
    "root_snapshot",
    "root_sysctls",
    "route",
    "rule",
    "runtime_doc",
    "screenshot",
    "service",
    "serving",
    "store_contents",
    "trace",
    "udp_socket",
    "unique_cluster",
]
