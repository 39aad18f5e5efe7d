"""The per-cluster supervisor daemon and the pod workload stand-in.

One process per cluster (`python -m podnet.daemon`) serves every declared containerPort of
every pod from sockets opened inside the pods' network namespaces (setns on the thread that
creates the socket). `supervisor` starts, reloads and stops it; `enter` runs a command inside
a pod's namespace for `podnet exec`. See docs/daemon.md.
"""
