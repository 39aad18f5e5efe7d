"""Controllers: make the kernel follow the store. `reconciler` computes the whole desired
state of a cluster from one snapshot and applies it (the one sync path: `up` runs its first
sync, the daemon every later one); `syncer` runs it in the daemon on request and every
resync period. Endpoint and readiness tracking (EndpointSlices) will be a controller here.
"""
