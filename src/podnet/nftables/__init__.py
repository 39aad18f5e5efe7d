"""nftables as values (see README.md): a typed model of tables, chains, sets, verdict maps,
counters and rules (`model`, `expr`), and `text`, the one place that renders it to `nft -f`
input. Pure: no kernel, no processes; the datapath applies finished tables."""
