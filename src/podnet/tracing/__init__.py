"""`podnet trace`: one real packet with nftables tracing on in podnet's own table, its
path read back in Kubernetes terms (Services, endpoints, policy rules, routes, pods)."""
