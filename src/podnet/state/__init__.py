"""The cluster's objects plus what controllers derive: podCIDRs, pod IPs, placement (layer 2)."""
