"""The dashboard in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium), on a real run and sweep made by
``python run.py``: every page opens at its own address and shows the
summary's numbers, Play moves time, a counterfactual reads its sentence, the
sweep page keeps its job in the address. Screenshots are saved as artefacts
(``$BROWSER_ARTIFACTS``, default ``outputs/browser/``), the same pictures
``python -m dashboard.screenshots`` writes to ``docs/screenshots/``.

Run with ``pytest -m browser`` (``.ci/run`` does, installing the browser
with apt when it is absent)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("selenium")
pytest.importorskip("streamlit")

from dashboard.browser import (  # noqa: E402
    CHROMEDRIVER, CHROMIUM, ROOT, chromium, dashboard_server, make_demo, metrics, open_page, screenshot_pages,
    wait_for,
)
from elastic_des.analysis.counterfactual import load_run_config, replay  # noqa: E402
from elastic_des.analysis.forensics import load_records, rank_by_proxy  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def browser_installed():
    """Fail, not skip, when the browser suite runs without the browser; checked
    only when a test here runs, so the default suite (which deselects them)
    collects this module on a machine with no browser."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(f"the browser test needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)",
                    pytrace=False)

ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", ROOT / "outputs" / "browser"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def browser(demo):
    run_dir, sweep_dir = demo
    with dashboard_server(run_dir, sweep_dir) as url, chromium() as driver:
        yield url, driver


def main_text(driver) -> str:
    return driver.find_element("css selector", '[data-testid="stMain"]').text


def pct(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}%}"


def usd(value: float) -> str:
    return f"${value:,.2f}"


def test_every_page_opens_at_its_address_with_the_summary_numbers(browser, demo):
    url, driver = browser
    run_dir, _ = demo
    s = json.loads((run_dir / "summary.json").read_text())
    shots = screenshot_pages(driver, url, ARTIFACTS)
    assert [p.name for p in shots] == [f"dashboard_{p}.png" for p in
                                       ("architecture", "playback", "forensics", "cost", "sweep", "not_a_run")]
    assert all(p.stat().st_size > 10_000 for p in shots)
    for page in ("architecture", "playback", "forensics", "cost"):
        open_page(driver, f"{url}/{page}", s["run/name"])
        assert driver.current_url == f"{url}/{page}"  # not sent back to the first page
        assert "Page not found" not in driver.find_element("tag name", "body").text
        shown = wait_for(driver, lambda d: metrics(d) if len(metrics(d)) >= 5 else None, 60, f"{page} metrics")
        assert shown[f"SLA, {s['run/world']}"] == pct(s["sla/compliance"])
        assert shown[f"cost, {s['run/world']}"] == usd(s["cost/usd"])
        assert shown[f"SLA, {s['run/baseline']}"] == pct(s["baseline/sla/compliance"])
        assert shown[f"cost, {s['run/baseline']}"] == usd(s["baseline/cost/usd"])
        assert shown["saving vs baseline"] == usd(s["savings/cost_usd"])


def test_sweep_page_shows_the_aggregate_and_keeps_the_job_in_the_address(browser, demo):
    url, driver = browser
    _, sweep_dir = demo
    agg = pd.read_csv(sweep_dir / "sweep_aggregate.csv")
    open_page(driver, f"{url}/sweep", "4 jobs in 2 variants")
    cells = wait_for(driver, lambda d: [c.get_attribute("textContent") for c in
                                        d.find_elements("css selector", '[role="gridcell"]')], 30, "the tables")
    for cost, ci, sla, low, high in zip(agg["cost/usd.mean"], agg["cost/usd.ci95"], agg["sla/compliance.mean"],
                                        agg["sla/compliance.ci95_low"], agg["sla/compliance.ci95_high"]):
        assert f"{cost:,.2f} ± {ci:,.2f}" in cells
        # the mean, and its CI unless the interval is a point (every seed at the same SLA)
        interval = "" if low == high else f" ({100 * low:.3f}%–{100 * high:.3f}%)"
        assert f"{100 * sla:.3f}%{interval}" in cells
    assert all(high <= 1 for high in agg["sla/compliance.ci95_high"])
    job = sorted(p.name for p in sweep_dir.iterdir() if (p / "summary.json").is_file())[2]
    open_page(driver, f"{url}/sweep?job={job}", "4 jobs in 2 variants")
    def chosen(d) -> list[str]:
        boxes = d.find_elements("css selector", '[data-testid="stSelectbox"]')
        for box in boxes:
            d.execute_script("arguments[0].scrollIntoView();", box)  # drawn only when on screen
        return [i.get_attribute("value") for box in boxes for i in box.find_elements("css selector", "input")]

    assert job in wait_for(driver, chosen, 30, "the job selector")
    driver.refresh()
    open_page(driver, driver.current_url, "4 jobs in 2 variants")
    assert job in wait_for(driver, chosen, 30, "the job selector after a reload")
    assert f"job={job}" in driver.current_url


def test_play_moves_simulated_time(browser):
    url, driver = browser
    open_page(driver, f"{url}/playback", "Dual-world playback")

    def cursor(d) -> str:
        return d.find_element("css selector", '[data-testid="stSliderThumbValue"]').text

    start = wait_for(driver, cursor, 30, "the time cursor")
    play = wait_for(driver, lambda d: [b for b in d.find_elements("tag name", "button") if b.text.endswith("Play")],
                    30, "the Play button")[0]
    play.click()
    first = wait_for(driver, lambda d: cursor(d) if cursor(d) != start else None, 30, "the cursor to move")
    later = wait_for(driver, lambda d: cursor(d) if cursor(d) not in (start, first) else None, 30,
                     "the cursor to move on")
    minutes = [int(h) * 60 + int(m) for h, m in (re.match(r"(\d+):(\d+)", t).groups() for t in (first, later))]
    assert minutes[1] > minutes[0]  # time moves forward
    driver.save_screenshot(str(ARTIFACTS / "browser_playback_playing.png"))


def test_counterfactual_button_reads_its_sentence(browser, demo):
    url, driver = browser
    run_dir, _ = demo
    records = load_records(run_dir)
    cfg = load_run_config(run_dir)
    top = rank_by_proxy(records.decisions, records.candidate_ticks, cfg.explain.window_ticks, 1).iloc[0]
    record = records.decisions[int(top["tick"])]
    forced = next(name for name, delta in (("hold", 0), ("up", 1), ("down", -1))
                  if record["replicas_before"] + delta != record["replicas_after"])
    expected = replay(cfg, records, int(top["tick"]), forced, cfg.explain.window_ticks).sentence()
    open_page(driver, f"{url}/forensics", "Counterfactual")
    button = wait_for(driver, lambda d: [b for b in d.find_elements("tag name", "button")
                                         if "Run the counterfactual" in b.text], 30, "the counterfactual button")[0]
    driver.execute_script("arguments[0].scrollIntoView();", button)
    button.click()
    answer = wait_for(driver, lambda d: [e.text for e in d.find_elements("css selector", '[data-testid="stAlert"]')
                                         if "had it" in e.text], 120, "the counterfactual's sentence")[0]
    assert expected in answer.replace("\n", " ")
    assert not re.search(r"had it gone to (\d+) instead of scaling \w+ to \1\b", answer)
    driver.save_screenshot(str(ARTIFACTS / "browser_counterfactual.png"))
