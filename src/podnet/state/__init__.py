"""The cluster's objects and what controllers derive from them: the address plan
(`network`), scheduling and IPAM (`placement`, `allocations`), and a live cluster's store
(`store`: SQLite; `snapshot`: read back and validated; `changes`: apply/delete/label as the
API server makes them; `files`: the state directory). Pure but for the store's own I/O.
Service ClusterIP allocation belongs here too.
"""
