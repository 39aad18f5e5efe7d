"""The pod workload stand-in: one asyncio component that serves every declared
containerPort of every pod from sockets opened inside the pods' network namespaces (TCP,
UDP, HTTP echo of who answered and who asked), and proves each pod ready with checks from its
node. Pure parts: `sockets` (runtime.json -> sockets and checks), `http` (sans-io HTTP)."""
