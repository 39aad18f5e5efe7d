"""The datapath: the only code that changes the kernel.

`netns` is where namespaces live and the one guarded way into one (every component that
enters a namespace uses it); `wiring.apply_plan(plan)` makes the kernel's links, addresses,
routes and neighbours match a rendered NetPlan (diff-based through `session`, idempotent,
safe to re-run after a crash); `nft` applies finished rulesets, one `nft -f` transaction per
node, and reads counters back; `teardown(cluster)` removes everything a cluster's name prefix
covers and tolerates what is already gone. Every change happens inside network namespaces
podnet created; nothing here ever opens a netlink socket in the host's own namespace.
"""
