"""The cluster DNS server (`python -m podnet.dns`): answers from dns.json's records inside
every DNS pod's namespace, on port 53 UDP and TCP. docs/dns.md."""
