"""The per-cluster daemon: process supervision only. `__main__` is the composition root
(one process per cluster: the controller and the workload stand-in, wired together);
`supervisor` starts, reloads, syncs and stops it for the CLI; `procs` finds daemon processes
safely. What the daemon runs lives in podnet.controller and podnet.workload. See
docs/daemon.md.
"""
