"""Open generated pages in headless Chromium (Debian package) driven by Playwright."""

import os
import shutil

import pytest

from opgraph.demo import SYSTEMS, run_demo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (make test installs it)"),
]

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def render(page_path, screenshot):
    sync_api = pytest.importorskip("playwright.sync_api")
    errors = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.resolve().as_uri())
            page.wait_for_load_state("load")
            info = page.evaluate(
                """() => ({
                    title: document.title,
                    heading: document.querySelector('#title').textContent,
                    sections: [...document.querySelectorAll('section.report-section')].map(s => s.id),
                    images: [...document.images].map(i => ({ok: i.complete && i.naturalWidth > 0, alt: i.alt})),
                })"""
            )
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return info, errors


def test_demo_page_renders_in_chromium(tmp_path):
    # Every available system's quick demo, as `make demo` runs them (OPGRAPH_DEMO_SYSTEMS=dcg,ffa narrows it).
    chosen = os.environ.get("OPGRAPH_DEMO_SYSTEMS")
    only = tuple(s for s in chosen.split(",") if s) if chosen is not None else SYSTEMS
    page = run_demo(tmp_path / "demo", quick=True, only=only)
    info, errors = render(page, tmp_path / "demo.png")
    assert info["title"] == "opgraph demo" and info["heading"] == "opgraph demo"
    assert info["sections"][0] == "graph"
    assert len(info["sections"]) == len(set(info["sections"]))
    assert info["images"] and all(img["ok"] for img in info["images"]), info["images"]
    assert errors == []
    assert (tmp_path / "demo.png").stat().st_size > 10_000
