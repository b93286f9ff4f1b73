"""Fixtures of the browser tests: Debian's chromium through Playwright, step screenshots, and a
report of what the browser and the servers showed when a test fails.

Chromium comes from apt (Playwright's own browser download is not reachable from CI). In CI
(``CI`` set) a missing chromium fails the suite; on a laptop without it the tests are skipped
with the command that installs it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO
from playwright.sync_api import Browser, BrowserContext, Page, expect

from .lab_server import LabServer

ARTIFACTS = REPO / "test-artifacts" / "browser"

# Headless chromium that stays off the network: no update checks, sync, field trials or
# component downloads (without these it floods a closed network with retries).
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where chromium's own sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
# Page states that wait on the servers (a fetch, a grade saved, a dialog) get 30 s, not
# Playwright's 5 s: a loaded 2-core CI machine can be that slow; passing tests do not wait longer.
expect.set_options(timeout=30_000)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = find_chromium()
    if path is None:
        message = (
            "chromium is not installed; the browser tests need it: "
            "sudo apt-get install chromium (or run bash tools/setup.sh)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message}. CI must run the browser tests.", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict, chromium_executable: str) -> dict:
    """pytest-playwright's launch options with Debian's chromium; every launch gets a fresh
    temporary profile (user-data dir) from Playwright."""
    return {
        **browser_type_launch_args,
        "executable_path": chromium_executable,
        "args": CHROMIUM_ARGS,
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:120]


class BrowserSession:
    """One browser context with its pages and the servers it talks to, plus step screenshots
    saved under ``test-artifacts/browser/<folder>/``."""

    def __init__(self, context: BrowserContext, folder: Path) -> None:
        self.context = context
        self.folder = folder
        self.servers: dict[str, LabServer] = {}
        self.last_screenshot: Path | None = None
        self._count = 0

    def new_page(self) -> Page:
        return self.context.new_page()

    def shot(self, page: Page, step: str) -> Path:
        """Save a screenshot of ``page`` as the next numbered step."""
        self._count += 1
        path = self.folder / f"{self._count:02d}-{_slug(step)}.png"
        page.screenshot(path=path)
        self.last_screenshot = path
        return path

    def failure_sections(self) -> list[tuple[str, str]]:
        """Screenshots of every open page and the end of every server log, for a failure."""
        sections = []
        for number, page in enumerate(self.context.pages):
            try:
                path = self.shot(page, f"failure-page-{number}")
            except Exception as error:  # the page may be what broke
                sections.append((f"screenshot of page {number}", f"not taken: {error}"))
            else:
                sections.append((f"screenshot of page {number}", f"{path} ({page.url})"))
        for name, server in self.servers.items():
            sections.append((f"{name} jupyter server log (end)", server.log_tail()))
        return sections


@pytest.fixture(scope="module")
def browser_session(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserSession]:
    """A browser context for one test module; its screenshots go to
    ``test-artifacts/browser/<module>/``."""
    folder = ARTIFACTS / request.module.__name__.rsplit(".", 1)[-1]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    try:
        yield BrowserSession(context, folder)
    finally:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and report.when in ("setup", "call"):
        session = getattr(item, "funcargs", {}).get("browser_session")
        if isinstance(session, BrowserSession):
            for title, content in session.failure_sections():
                report.sections.append((title, content))
    return report
