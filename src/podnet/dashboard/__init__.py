"""`podnet dashboard`: a read-only web page of a running cluster (ASGI: Starlette on
uvicorn, 127.0.0.1 only). docs/dashboard.md."""
