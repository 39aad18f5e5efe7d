"""The dashboard's ASGI app (Starlette): the page, its static files, a JSON API over one
cluster's store, and one server-sent event stream that tells pages what changed.

Read-only but for one action: GET routes read, and the store is opened for reading; the
one POST route (/api/quarantine) runs `podnet quarantine` (given by cli.dashboard) after a
confirmation on the page. The server binds 127.0.0.1 only (cli.dashboard); the Host header
must name the loopback too, so that a web page elsewhere cannot reach the API through DNS
rebinding. The POST also wants a loopback client, an Origin equal to the page's own, a JSON
body (which a cross-origin form cannot send without a CORS preflight, which is never
answered) and the CSRF token the page was served with.

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
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from podnet.dashboard.cluster_view import ClusterView, daemon_status, store_revision
from podnet.dashboard.integrations import QuarantineAction, features, flow_batches
from podnet.report.html_page import asset

STATIC = Path(__file__).resolve().parent / "static"
POLL_SECONDS = 0.25
PID_CHECK_SECONDS = 2.0  # finding the daemon's process scans /proc: less often
COUNTERS_SECONDS = 2.0
LOOPBACK_HOSTS = ["127.0.0.1", "localhost"]
LOOPBACK_CLIENTS = {"127.0.0.1", "::1"}
CSRF_PLACEHOLDER = "__PODNET_CSRF_TOKEN__"


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


def _refuse(request: Request, token: str) -> str | None:
    """Why a POST is refused (None: it may run): not from the loopback, from another
    origin, not JSON, or without the page's token."""
    client = request.client.host if request.client else ""
    if client not in LOOPBACK_CLIENTS:
        return f"not from the loopback ({client or 'unknown client'})"
    origin = request.headers.get("origin")
    if origin != f"http://{request.headers.get('host', '')}":
        return f"cross-origin request refused (Origin: {origin or 'none'})"
    if request.headers.get("sec-fetch-site", "same-origin") != "same-origin":
        return "cross-site request refused (Sec-Fetch-Site)"
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return "the body must be JSON (Content-Type: application/json)"
    if not secrets.compare_digest(request.headers.get("x-csrf-token", ""), token):
        return "missing or wrong CSRF token (reload the page)"
    return None


def create_app(cluster: str, sdir: Path, quarantine: QuarantineAction | None = None) -> Starlette:
    source = Source(cluster, sdir)
    token = secrets.token_urlsafe(24)  # per server start: a page from before must reload
    page = (STATIC / "index.html").read_text().replace(CSRF_PLACEHOLDER, token)
    acting = asyncio.Lock()

    def panels() -> dict[str, Any]:
        return {k: f.to_json() for k, f in features(quarantine, os.geteuid() == 0).items()}

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html", headers={"Cache-Control": "no-store"})

    async def shared_asset(request: Request) -> Response:
        name = request.path_params["name"]
        kinds = {"matrix.js": "text/javascript", "matrix.css": "text/css"}
        if name not in kinds:
            return Response("not found", status_code=404)
        return Response(asset(name), media_type=kinds[name])

    async def api_status(request: Request) -> Response:
        doc = await source.status()
        doc["features"] = panels()
        return JSONResponse(doc)

    async def api_graph(request: Request) -> Response:
        view = await source.view()
        # readiness only from a daemon that runs (a killed one leaves its files behind)
        ready = (await asyncio.to_thread(daemon_status, sdir, True)).ready
        body = await asyncio.to_thread(view.graph_json, ready)
        return Response(body, media_type="application/json")

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

    async def flows(request: Request) -> Response:
        """The flow history, then every record the collector appends: "flows" events of
        rows (integrations.flow_batches)."""

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            async for batch in flow_batches(sdir, request.is_disconnected):
                yield _sse("flows", batch)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def api_quarantine(request: Request) -> Response:
        """Quarantine a pod, or undo it: returns once `podnet quarantine` returned (in
        force on every node, connections cut, the proof probed), with what it printed."""
        if (why := _refuse(request, token)) is not None:
            return JSONResponse({"error": why}, status_code=403)
        if not panels()["quarantine"]["available"] or quarantine is None:
            return JSONResponse({"error": panels()["quarantine"]["note"]}, status_code=503)
        try:
            body = await request.json()
            pod, undo = body["pod"], body.get("undo", False)
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'the body is {"pod": "ns/pod", "undo": bool}'}, 400)
        if not isinstance(pod, str) or not isinstance(undo, bool):
            return JSONResponse({"error": "pod is a string ns/pod, undo a boolean"}, 400)
        if acting.locked():
            return JSONResponse({"error": "another action is running"}, status_code=409)
        async with acting:
            started = time.monotonic()
            status, output = await asyncio.to_thread(quarantine, cluster, pod, undo)
        return JSONResponse(
            {
                "pod": pod,
                "undo": undo,
                "exit": status,
                "output": output,
                "seconds": round(time.monotonic() - started, 2),
            },
            status_code={0: 200, 2: 400}.get(status, 500),
        )

    async def warm() -> None:
        view = await source.view()
        ready = (await asyncio.to_thread(daemon_status, sdir, True)).ready
        await asyncio.to_thread(view.graph_json, ready)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # the first view and its map are made at start-up: the first page does not wait
        # for the imports, the analysis and the map's document (0.35 s CPU at 1,000 pods)
        task = asyncio.get_running_loop().create_task(warm())
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
            Route("/api/flows", flows),
            Route("/api/quarantine", api_quarantine, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_HOSTS)],
    )
