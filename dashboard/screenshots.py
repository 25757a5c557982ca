"""Regenerate ``docs/screenshots/`` from a fresh demo run and sweep in headless Chromium.

    python -m dashboard.screenshots [--out docs/screenshots]

The same pages, opened the same way, as the browser test
(``pytest -m browser tests/test_browser.py``); needs Debian's ``chromium``
and ``chromium-driver`` and the ``dashboard`` extra.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from dashboard.browser import ROOT, chromium, dashboard_server, make_demo, screenshot_pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dashboard-demo-") as folder:
        run_dir, sweep_dir = make_demo(Path(folder))
        with dashboard_server(run_dir, sweep_dir) as url, chromium() as driver:
            for path in screenshot_pages(driver, url, args.out):
                print(path)


if __name__ == "__main__":
    main()
