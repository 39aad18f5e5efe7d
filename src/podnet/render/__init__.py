"""Pure renderers: cluster snapshot + placement -> the desired datapath, as values: every
kernel object name (`kernel_names`), the topology (`topology` -> `netplan`), one nftables
ruleset per node (`policy_nft`), runtime.json (`runtime`).

Nothing here touches the kernel; `podnet.datapath` applies what these functions return.
"""
