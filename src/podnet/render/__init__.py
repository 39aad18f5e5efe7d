"""Pure renderers (layer 4): cluster snapshot + placement -> the desired datapath, as values.

Nothing here touches the kernel; `podnet.datapath` applies what these functions return.
"""
