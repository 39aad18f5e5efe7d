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
    refused: list[str] = field(default_factory=list)


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
            b = Browser(context.pages[0] if context.pages else context.new_page(), context)

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
