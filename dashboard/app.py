"""The dashboard's entry point and page router.

    streamlit run dashboard/app.py -- --run-dir outputs/runs/default__threshold__0 \\
        --sweep-dir outputs/sweeps/<date>

Every page reads the folders named in the sidebar; each page is one file in
``dashboard/views`` and has its own address (``/playback``, ``/forensics``,
``/cost``, ``/sweep``). The ``run`` and ``sweep`` query parameters
(``/cost?run=outputs/runs/x``) choose the folders too, and ``t`` the
playback's first cursor, in seconds (``/playback?t=36000``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Streamlit runs this file as a script, with dashboard/ on sys.path but not
# the repository that holds the ``dashboard`` package.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard.common import folder_inputs  # noqa: E402

VIEWS = Path(__file__).resolve().parent / "views"
PAGES = (  # file, title, address, icon
    ("architecture.py", "Architecture", "architecture", ":material/account_tree:"),
    ("playback.py", "Dual-world playback", "playback", ":material/play_circle:"),
    ("forensics.py", "Decision forensics", "forensics", ":material/manage_search:"),
    ("cost.py", "Cost analysis", "cost", ":material/payments:"),
    ("sweep.py", "Sweep", "sweep", ":material/scatter_plot:"),
)


def arguments(argv: list[str]) -> argparse.Namespace:
    """``--run-dir`` and ``--sweep-dir`` after ``--``; anything else (a test
    runner's own arguments, when the app runs under AppTest) is ignored."""
    parser = argparse.ArgumentParser(prog="streamlit run dashboard/app.py --", allow_abbrev=False, add_help=False)
    parser.add_argument("--run-dir", help="a run folder written by `python run.py`")
    parser.add_argument("--sweep-dir", help="a sweep folder written by `python run.py -m ...`")
    return parser.parse_known_args(argv)[0]


st.set_page_config(page_title="elastic_des dashboard", page_icon=":material/dns:", layout="wide")
args = arguments(sys.argv[1:])
links = st.sidebar.container()
folder_inputs(args.run_dir, args.sweep_dir)
pages = [st.Page(VIEWS / file, title=title, url_path=address, icon=icon) for file, title, address, icon in PAGES]


def landing() -> None:
    """``/``: the architecture page. Streamlit serves its default page only at
    ``/`` (``/<its address>`` says "Page not found"), so the default is this
    redirect and every page keeps an address that opens directly."""
    st.switch_page(pages[0])


current = st.navigation([st.Page(landing, title="elastic_des", url_path="home", default=True), *pages],
                        position="hidden")
for page in pages:  # the menu, without the redirect
    links.page_link(page)
current.run()
