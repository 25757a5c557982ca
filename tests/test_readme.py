"""The README's quoted outputs are what the commands print today."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def quoted(kind: str) -> str:
    """The sentence under ``<!-- readme-example: kind -->`` in the README."""
    match = re.search(rf"<!-- readme-example: {kind} -->\n`([^`]+)`", (ROOT / "README.md").read_text())
    assert match, f"README has no {kind} example"
    return match.group(1)


@pytest.mark.slow
def test_readme_explain_example_matches_a_fresh_run(tmp_path):
    def run(*args: str) -> None:
        result = subprocess.run([sys.executable, str(ROOT / "run.py"), *args, "output.progress=false"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]

    run()  # python run.py, as the README says
    run("task=explain", "explain.run_dir=outputs/runs/default__threshold__0", "explain.tick=602")
    result = json.loads((tmp_path / "outputs/explain/slm/default__threshold__0/tick602__hold/explain.json").read_text())
    assert result["explain/decision"] == quoted("decision")
    assert result["explain/counterfactual"] == quoted("counterfactual")
