"""What a user sees on the command line: no library INFO noise, and
``--help`` lists only options that can be chosen."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)


def test_default_run_prints_no_library_info_lines(tmp_path):
    # the report is on: it draws the categorical per-hour bars that made matplotlib log at INFO
    result = _run(tmp_path, "scenario.duration_s=3600", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sla/compliance" in result.stdout
    loggers = re.findall(r"\]\[([\w.]+)\]\[INFO\]", result.stdout + result.stderr)
    assert [name for name in loggers if not name.startswith("elastic_des")] == []
    assert (tmp_path / "run" / "report.html").is_file()


def test_help_lists_no_schema_entries_and_schemas_are_not_options(tmp_path):
    result = _run(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    groups = result.stdout.split("== Config ==")[0]
    options = re.search(r"^policy: (.*)$", groups, re.M).group(1).split(", ")
    assert {"hpa", "kpa", "predictive", "q_learning", "static", "threshold"} <= set(options)
    assert "base_" not in groups and "schema" not in groups
    refused = _run(tmp_path, "policy=base_threshold", f"hydra.run.dir={tmp_path / 'x'}")
    assert refused.returncode != 0 and "Could not find 'policy/base_threshold'" in refused.stderr
    refused = _run(tmp_path, "policy=schema_policy_threshold", f"hydra.run.dir={tmp_path / 'y'}")
    assert refused.returncode != 0 and "Could not find 'policy/schema_policy_threshold'" in refused.stderr
