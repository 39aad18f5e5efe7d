"""The NetworkPolicy engine: a pure function of the cluster snapshot.

One engine answers `analyze`, `explain`, writes the expectations of `probe` and drives the
datapath renderer, so that none of them can disagree with another.
"""
