"""A real browser for tests and benchmarks: Debian's chromium driven by Playwright.

Playwright's own browser download cannot work on these machines (no internet), so the
system browser is launched by its path, headless, with everything that would reach out on
its own turned off, in a fresh profile that is removed afterwards. `offline=True` also
aborts every request that is not for the page's own origin (file:// or the loopback
server under test) and records it, so that a test can prove a page needed no network.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Browser:
    """The page, and the requests refused because they left the allowed origins."""

    page: Any
    context: Any
    profile: str = ""  # the fresh user-data-dir: names this browser's processes
    refused: list[str] = field(default_factory=list)

    def cpu_seconds(self, process_type: str | None = None) -> float:
        """CPU time (user + system) of every process of this browser so far (or of its
        processes of one `--type=`, e.g. "renderer": the pages' own share): what a page
        cost, apart from how busy the machine was."""
        import os
        from pathlib import Path

        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                if self.profile.encode() not in cmd:
                    continue
                if process_type and f"--type={process_type}".encode() not in cmd:
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def browser(
    allow: tuple[str, ...] = ("file://",), viewport: tuple[int, int] = (1400, 900)
) -> Iterator[Browser]:
    """A fresh chromium page; requests whose URL does not start with one of `allow` are
    aborted and listed in `refused`."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="podnet-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS,
                viewport={"width": viewport[0], "height": viewport[1]},
            )
            b = Browser(context.pages[0] if context.pages else context.new_page(), context, profile)

            def gate(route: Any) -> None:
                url = route.request.url
                if url.startswith(allow) or url.startswith("data:"):
                    route.continue_()
                else:
                    b.refused.append(url)
                    route.abort()

            context.route("**/*", gate)
            try:
                yield b
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel's choice)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def dashboard(
    cluster: str, env: dict[str, str] | None = None, timeout: float = 60
) -> Iterator[str]:
    """`podnet dashboard --cluster NAME` in a child process on a free loopback port; yields
    its URL once it answers, and stops it (by its own pid) afterwards."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen(
        [sys.executable, "-m", "podnet", "dashboard", "--cluster", cluster, "--port", str(port)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"podnet dashboard exited {proc.returncode}: {out}")
            try:
                with urllib.request.urlopen(url + "api/status", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


SCREENSHOTS_ENV = "PODNET_SCREENSHOTS"  # `make screenshots` sets it to docs/img


def screenshot(page: Any, name: str) -> None:
    """Save the page as `name` into $PODNET_SCREENSHOTS when set (the docs' pictures are
    taken by the tests that check what they show)."""
    import os
    from pathlib import Path

    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))
