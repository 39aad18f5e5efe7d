"""`podnet doctor`: a running cluster checked against its store, each drift named in
Kubernetes terms with the command that fixes it; `--fix` repairs through the reconciler
(the daemon's full sync) and the daemon's supervisor, then checks again.

The desired state is the reconciler's own (`Reconciler.desired`: the plan, the rulesets);
the netlink comparison is the sync's own (`datapath.session.Session` in dry run). Checks
live in one list (`checks.CHECKS`); an in-cluster server registers into
`servers.SERVERS` (the DNS server does; the ingress's nginx can)."""
