"""The web app in a real browser: headless Chromium (Debian's package) driven by Playwright.

Skipped, with the reason, only where no Chromium is installed (.ci/run installs it).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

from tests.serve_helpers import live_server, train_chat_ready_run  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# Screenshots go to a temporary folder; MINIGPT_SCREENSHOTS=docs/img refreshes the README's.
SHOTS_ENV = "MINIGPT_SCREENSHOTS"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return Path(os.environ.get(SHOTS_ENV) or tmp_path_factory.mktemp("screenshots"))


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    runs = tmp_path_factory.mktemp("browser-runs")
    run = shutil.copytree(train_chat_ready_run(), runs / "tiny")
    # a second run, so the runs view has something to compare
    other = runs / "tiny-lr"
    other.mkdir()
    lines = [{"kind": "train", "iter": i, "loss": 4.0 - 0.015 * i} for i in range(1, 81)]
    lines.append(
        {"kind": "eval", "iter": 80, "train": 2.9, "val": 2.95, "val_ppl": 19.1, "val_bpb": 4.2}
    )
    (other / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    with live_server([str(run)], runs=runs) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 820})
        page.goto(url + "/")
        yield page
        browser.close()


def test_playground_streams_text(page, shots):
    page.click("#tab-playground")
    page.fill("#prompt", "To be")
    page.fill("#pg-temperature", "0")
    page.fill("#pg-max-tokens", "60")
    page.click("#generate")
    page.wait_for_function("document.querySelectorAll('#output .tok').length >= 5")
    page.wait_for_function("document.querySelector('#generate').disabled === false")
    tokens = page.locator("#output .tok")
    assert tokens.count() > 5  # one box per streamed chunk
    assert "logprob" in tokens.first.get_attribute("title")
    assert "tok/s" in page.inner_text("#pg-stats")
    page.wait_for_function("document.querySelectorAll('#pg-prompt-tokens .tok').length === 5")
    page.screenshot(path=str(shots / "serve-playground.png"))


def test_runs_view_draws_loss_chart_and_compares(page, shots):
    page.click("#tab-runs")
    page.wait_for_selector(".run-item[data-run='tiny']")
    page.click(".run-item[data-run='tiny'] .name")
    page.wait_for_function("Number(document.querySelector('#run-chart').dataset.points || 0) > 0")
    points = int(page.get_attribute("#run-chart", "data-points"))
    assert points >= 8 + 2  # train log lines and both evaluations
    assert "perplexity" in page.inner_text("#run-evals")
    assert "block_size = 32" in page.inner_text("#run-config")
    # the canvas really has ink on it: not every pixel is the same
    distinct = page.evaluate(
        """() => { const c = document.querySelector('#run-chart');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set(); for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] + ',' + d[i+1] + ',' + d[i+2] + ',' + d[i+3]);
        return seen.size; }"""
    )
    assert distinct > 3
    page.screenshot(path=str(shots / "serve-run.png"), full_page=True)
    for run_id in ("tiny", "tiny-lr"):
        page.check(f".run-item[data-run='{run_id}'] input")
    page.click("#compare")
    page.wait_for_function("document.querySelector('#run-title').textContent.includes('vs')")
    page.wait_for_function("Number(document.querySelector('#run-chart').dataset.points) > 80")
    assert "tiny-lr" in page.inner_text("#run-evals")
    page.screenshot(path=str(shots / "serve-compare.png"), full_page=True)


def test_chat_view_streams_a_reply(page, shots):
    page.click("#tab-chat")
    assert "plain text turns" in page.inner_text("#chat-note")
    page.fill("#chat-temperature", "0")
    page.fill("#chat-input", "To be, or not to be?")
    page.click("#chat-send")
    page.wait_for_function("document.querySelectorAll('.msg.assistant').length === 1")
    page.wait_for_function("document.querySelector('#chat-send').disabled === false")
    assert page.inner_text(".msg.user") == "To be, or not to be?"
    page.screenshot(path=str(shots / "serve-chat.png"))
