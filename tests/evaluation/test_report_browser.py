"""The compare report opens in headless Chromium (Debian's, as the app tests use it) with no console
errors, its embedded plots decode, and it shows one plot per aspect of the compared tables."""

import pytest
from playwright.sync_api import sync_playwright
from test_compare import scored_run

from videoscore_reward.evaluation import compare

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.parametrize("aspects", [["visual quality", "text alignment", "physical consistency"],
                                     ["visual quality", "temporal consistency", "dynamic degree",
                                      "text-to-video alignment", "factual consistency"]])
def test_report_loads_without_console_errors_and_shows_one_plot_per_aspect(tmp_path, aspects):
    prompts = [f"<b>prompt</b> {i}" for i in range(12)]  # markup in a prompt must show as text
    a = scored_run(tmp_path / "a.csv", {k: [1 + (i * 7 % 12) / 4 for i in range(12)] for k in aspects}, prompts)
    b = scored_run(tmp_path / "b.csv", {k: [1 + (i * 5 % 12) / 4 for i in range(12)] for k in aspects}, prompts)
    compare(a, b, n_resamples=50).write(tmp_path / "out")
    report = tmp_path / "out" / "report.html"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            problems = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("request", lambda request: None if request.url.startswith(("file:", "data:")) else problems.append(request.url))
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            plots = page.locator("#vs-aspect-plots figure[data-aspect] img")
            assert plots.count() == len(aspects)
            assert [page.locator("#vs-aspect-plots figure").nth(i).get_attribute("data-aspect")
                    for i in range(len(aspects))] == aspects
            sizes = page.eval_on_selector_all("img.vs-plot", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            assert sizes and all(size == [True, 640, 480] for size in sizes)
            assert page.locator("#vs-shifts tr[data-column]").count() == len(aspects) + 1
            assert page.locator("b", has_text="prompt").count() == 0
            assert "<b>prompt</b> " in page.locator("body").inner_text()
            page.screenshot(path=tmp_path / "report.png", full_page=True)
        finally:
            browser.close()
    assert problems == []
