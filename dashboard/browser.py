"""The dashboard in a real browser: a Streamlit server and headless Chromium.

Used by the browser test (``tests/test_browser.py``, ``pytest -m browser``)
and by ``python -m dashboard.screenshots``, which regenerates
``docs/screenshots/`` the same way. Chromium and its driver are Debian's
``chromium`` and ``chromium-driver`` packages (``/usr/bin/chromium``,
``/usr/bin/chromedriver``), driven by Selenium; nothing is downloaded at run
time (Selenium Manager is bypassed by naming the driver).

    with dashboard_server(run_dir, sweep_dir) as url, chromium() as driver:
        driver.get(f"{url}/playback")
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dashboard_server(run_dir: Path, sweep_dir: Path, timeout_s: float = 60.0) -> Iterator[str]:
    """``streamlit run dashboard/app.py`` on a free loopback port; yields its URL
    and stops the server (this process's child) on exit."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
               "--server.headless=true", "--server.address=127.0.0.1", f"--server.port={port}",
               "--browser.gatherUsageStats=false", "--server.fileWatcherType=none",
               "--", "--run-dir", str(run_dir), "--sweep-dir", str(sweep_dir)]
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"the dashboard server did not start:\n{log.read().decode(errors='replace')}")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@contextmanager
def chromium() -> Iterator["object"]:
    """A headless Chromium driven by Selenium, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(driver, predicate, timeout_s: float = 30.0, what: str = "the page"):
    """Poll ``predicate(driver)`` until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate(driver)
            if value:
                return value
        except Exception as exc:  # stale elements while Streamlit redraws: try again
            last_error = exc
        time.sleep(0.25)
    raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}" + (f" ({last_error})" if last_error else ""))


def settled(driver) -> bool:
    """The app has drawn its page and is not running a script."""
    from selenium.webdriver.common.by import By

    if not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMain"]'):
        return False
    # While a script runs, the header's status widget shows "Running..." and a Stop button.
    header = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"], header')
    return not any(word in h.text for h in header for word in ("Running", "Stop"))


def metrics(driver) -> dict[str, str]:
    """The page's ``st.metric`` labels and values."""
    from selenium.webdriver.common.by import By

    found = {}
    for box in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
        label = box.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text.strip()
        value = box.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text.strip()
        found[label] = value
    return found


def open_page(driver, url: str, expect_text: str, timeout_s: float = 60.0) -> None:
    """Load ``url`` and wait until the main area shows ``expect_text`` and the script has finished."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_for(driver, lambda d: expect_text in d.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]').text
             and settled(d), timeout_s, f"{expect_text!r} on {url}")


# ---------------------------------------------------------------- a demo run and sweep, and their pictures

PAGES = {"architecture": "Architecture", "playback": "Dual-world playback", "forensics": "Decision forensics",
         "cost": "Cost analysis", "sweep": "Sweep"}


def make_demo(folder: Path, run_s: int = 7200, sweep_s: int = 1800) -> tuple[Path, Path]:
    """A real run (``python run.py``, report included) and a 2×2 sweep
    (two policies, two seeds) under ``folder``; returns their folders."""
    folder = Path(folder)
    run_dir, sweep_dir = folder / "run", folder / "sweep"
    # Batching replicas of 8 sequences instead of the preset's 256, so that a
    # two-hour run of the default scenario scales (and has decisions to explain).
    common = ("output.progress=false", "world.model.max_num_seqs=8")
    for args in ([f"scenario.duration_s={run_s}", f"hydra.run.dir={run_dir}"],
                 ["-m", "policy=static,threshold", "seed=0,1", f"scenario.duration_s={sweep_s}",
                  "output.report=false", f"hydra.sweep.dir={sweep_dir}"]):
        done = subprocess.run([sys.executable, str(ROOT / "run.py"), *args, *common], cwd=folder,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"python run.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return run_dir, sweep_dir


def screenshot_pages(driver, url: str, out_dir: Path) -> list[Path]:
    """Open every page directly by its address and save ``dashboard_<page>.png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for address, title in PAGES.items():
        open_page(driver, f"{url}/{address}", title)
        wait_for(driver, lambda d: not d.find_elements("css selector", '[data-testid="stSkeleton"]'), 60,
                 f"the {address} page's content")
        path = out_dir / f"dashboard_{address}.png"
        driver.save_screenshot(str(path))
        paths.append(path)
    # A folder that is not a run: the page says so and how to make one.
    open_page(driver, f"{url}/playback?run={ROOT / 'docs'}", "Cannot show this run")
    paths.append(out_dir / "dashboard_not_a_run.png")
    driver.save_screenshot(str(paths[-1]))
    return paths
