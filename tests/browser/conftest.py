"""Playwright fixtures for the task-page browser tests, and a stand-in for MTurk's outer page.

Playwright's sync API runs an event loop in this thread, so Django's async-safety check must be
told that the ORM calls the tests make between page actions are fine.
"""

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote

import pytest

from tests.tasks.conftest import taskdata

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture
def td():
    return taskdata


@pytest.fixture(scope="module")
def browser():
    """One Chromium per module; closed before other modules start their own Playwright
    (two sync Playwright instances cannot share the thread's event loop)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


class OuterOrigin:
    """A tiny site on another origin: frames the task like MTurk and records externalSubmit."""

    def __init__(self):
        self.posts: list[dict[str, list[str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, body: str, status: int = 200):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                query = parse_qs(self.path.partition("?")[2])
                src = query.get("src", [""])[0].replace('"', "%22")
                self._send(
                    "<!doctype html><title>Outer HIT frame</title>"
                    "<body style='margin:0'><h1 style='font:16px sans-serif'>Outer marketplace</h1>"
                    f'<iframe id="hit" src="{src}" style="width:100%;height:800px;border:0">'
                    "</iframe></body>"
                )

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                if self.path.startswith("/mturk/externalSubmit"):
                    outer.posts.append(parse_qs(body, keep_blank_values=True))
                    self._send("<!doctype html><p id='thanks'>HIT submitted to the outer site</p>")
                else:
                    self._send("not found", 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Another origin on the same site as the live server (localhost): the marketplace's
        # worker cookie is SameSite=Lax, so its task pages work in same-site frames only.
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def frame_url(self, src: str) -> str:
        return f"{self.origin}/hit?src={quote(src, safe='')}"

    def wait_for_posts(self, n: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.posts) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.posts

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def outer(settings):
    site = OuterOrigin()
    settings.TASK_FRAME_ANCESTORS = [site.origin]
    yield site
    site.close()


@pytest.fixture
def screenshot(browser):
    """Full-page screenshots of a task URL at desktop (1280) and phone (390) widths.

    Returns, per width, the page's scrollWidth, so a test can check nothing overflows."""

    def shoot(url: str, name: str, prepare=None, cookies=()) -> dict[str, int]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        widths = {}
        for label, opts in (
            ("desktop", {"viewport": {"width": 1280, "height": 900}}),
            (
                "phone",
                {
                    "viewport": {"width": 390, "height": 844},
                    "device_scale_factor": 2,
                    "is_mobile": True,
                    "has_touch": True,
                },
            ),
        ):
            context = browser.new_context(**opts)
            if cookies:
                context.add_cookies(list(cookies))
            page = context.new_page()
            page.goto(url)
            page.wait_for_load_state("networkidle")
            if prepare:
                prepare(page)
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_function(
                "() => [...document.images].every(i => i.complete || i.loading === 'lazy')"
            )
            widths[label] = page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
            context.close()
        return widths

    return shoot


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Example picks are cached per batch id, and ids repeat across tests' databases."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def market_worker(live_server):
    """A worker who took a HIT on the built-in marketplace: their assignment (made by the
    marketplace's own accept) and the signed cookie their browser holds for this site."""
    from django.conf import settings

    from hits.market_identity import market_cookie_value
    from hits.services import market_accept

    def take(hit, raw_id: str):
        assignment = market_accept(hit, raw_id)
        cookie = {
            "name": settings.MARKET_WORKER_COOKIE,
            "value": market_cookie_value(raw_id),
            "url": live_server.url,
            "sameSite": "Lax",
            "httpOnly": True,
        }
        return assignment, [cookie]

    return take
