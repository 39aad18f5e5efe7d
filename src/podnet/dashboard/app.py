"""The dashboard's ASGI app (Starlette): the page, its static files, a JSON API over one
cluster's store, and one server-sent event stream that tells pages what changed.

Read-only: GET routes only, and the store is opened for reading. The server binds
127.0.0.1 only (cli.dashboard); the Host header must name the loopback too, so that a web
page elsewhere cannot reach the API through DNS rebinding.

Live updates poll the store's change counter and the daemon's status file every
POLL_SECONDS (cheap: one SQLite read, one small file), never the kernel; the policy
counters, which only the kernel knows, are read every COUNTERS_SECONDS while a page
listens. A changed revision is analysed once (in a worker thread) and every page fetches
the new map.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from podnet.dashboard.cluster_view import ClusterView, daemon_status, store_revision
from podnet.dashboard.integrations import features
from podnet.report.html_page import asset

STATIC = Path(__file__).resolve().parent / "static"
POLL_SECONDS = 0.25
PID_CHECK_SECONDS = 2.0  # finding the daemon's process scans /proc: less often
COUNTERS_SECONDS = 2.0
LOOPBACK_HOSTS = ["127.0.0.1", "localhost"]


class Source:
    """The cluster the dashboard serves: the newest view, built once per revision."""

    def __init__(self, cluster: str, sdir: Path) -> None:
        self.cluster = cluster
        self.sdir = sdir
        self._view: ClusterView | None = None
        self._lock = asyncio.Lock()
        self._running: tuple[float, bool] = (0.0, False)

    async def view(self) -> ClusterView:
        async with self._lock:
            rev = await asyncio.to_thread(store_revision, self.sdir)
            if self._view is None or self._view.revision != rev:
                self._view = await asyncio.to_thread(ClusterView.read, self.cluster, self.sdir)
            return self._view

    async def status(self) -> dict[str, Any]:
        """The store's revision and the daemon's: what a page compares to know what changed."""
        checked, running = self._running
        check_pid = time.monotonic() - checked > PID_CHECK_SECONDS
        rev = await asyncio.to_thread(store_revision, self.sdir)
        daemon = await asyncio.to_thread(daemon_status, self.sdir, check_pid)
        if check_pid:
            self._running = (time.monotonic(), daemon.running)
        else:
            daemon = daemon.__class__(running, daemon.synced, daemon.ok, daemon.error, daemon.ready)
        return {"cluster": self.cluster, "revision": rev, "daemon": daemon.to_json()}


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def create_app(cluster: str, sdir: Path) -> Starlette:
    source = Source(cluster, sdir)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def shared_asset(request: Request) -> Response:
        name = request.path_params["name"]
        kinds = {"matrix.js": "text/javascript", "matrix.css": "text/css"}
        if name not in kinds:
            return Response("not found", status_code=404)
        return Response(asset(name), media_type=kinds[name])

    async def api_status(request: Request) -> Response:
        doc = await source.status()
        doc["features"] = {k: f.to_json() for k, f in features().items()}
        return JSONResponse(doc)

    async def api_graph(request: Request) -> Response:
        view = await source.view()
        # readiness only from a daemon that runs (a killed one leaves its files behind)
        ready = (await asyncio.to_thread(daemon_status, sdir, True)).ready
        return JSONResponse(await asyncio.to_thread(view.graph, ready))

    async def api_matrix(request: Request) -> Response:
        view = await source.view()
        return JSONResponse(await asyncio.to_thread(lambda: view.matrix))

    async def api_explain(request: Request) -> Response:
        q = request.query_params
        view = await source.view()
        try:
            rev, k, r, c = (int(q[x]) for x in ("rev", "k", "r", "c"))
        except (KeyError, ValueError):
            return JSONResponse({"error": "rev, k, r and c are integers"}, status_code=400)
        if rev != view.revision:
            return JSONResponse({"error": "stale", "revision": view.revision}, status_code=409)
        try:
            return JSONResponse(await asyncio.to_thread(view.explain, k, r, c))
        except IndexError as e:
            return JSONResponse({"error": str(e)}, status_code=404)

    async def api_counters(request: Request) -> Response:
        view = await source.view()
        counts = await asyncio.to_thread(view.policy_counts)
        return JSONResponse({"revision": view.revision, **counts})

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            last: dict[str, Any] | None = None
            next_counters = 0.0
            yield "retry: 1000\n\n"
            while not await request.is_disconnected():
                status = await source.status()
                if status != last:
                    yield _sse("status", status)
                    last = status
                if time.monotonic() >= next_counters:
                    view = await source.view()
                    counts = await asyncio.to_thread(view.policy_counts)
                    yield _sse("counters", {"revision": view.revision, **counts})
                    next_counters = time.monotonic() + COUNTERS_SECONDS
                await asyncio.sleep(POLL_SECONDS)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # the first view is read at start-up: the first page does not wait for the imports
        task = asyncio.get_running_loop().create_task(source.view())
        yield
        task.cancel()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/", index),
            Route("/assets/{name}", shared_asset),
            Route("/api/status", api_status),
            Route("/api/graph", api_graph),
            Route("/api/matrix", api_matrix),
            Route("/api/explain", api_explain),
            Route("/api/counters", api_counters),
            Route("/api/events", events),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_HOSTS)],
    )
