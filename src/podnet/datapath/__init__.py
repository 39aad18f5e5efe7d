"""The datapath (layer 5): the only code that changes the kernel.

`apply(plan)` makes the kernel match a rendered plan (diff-based, idempotent, safe to re-run
after a crash); `teardown(cluster)` removes everything a cluster's name prefix covers and
tolerates what is already gone. Every change happens inside network namespaces podnet
created; nothing here ever opens a netlink socket in the host's own namespace.
"""
