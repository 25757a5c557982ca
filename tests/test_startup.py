"""Start-up stays fast: heavy libraries load only where they are used.

torch (neural forecasters), seaborn and matplotlib (report, plots,
dashboard) take seconds to import; the application module and the
``--help`` of ``run.py`` must not pay for them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from elastic_des.usage import config_groups, wants_help

ROOT = Path(__file__).resolve().parent.parent
HEAVY_FOR_APP = ("torch", "seaborn", "matplotlib", "streamlit")


def loaded_modules(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_app_import_loads_no_torch_seaborn_or_matplotlib():
    loaded = loaded_modules("import elastic_des.app")
    assert "elastic_des.app" in loaded and "hydra" in loaded  # the import did happen
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY_FOR_APP) == []


def test_run_help_lists_every_config_group_without_loading_the_app():
    out = subprocess.run([sys.executable, "run.py", "--help"], capture_output=True, text=True, check=True, cwd=ROOT)
    for group, options in config_groups().items():
        assert f"\n{group}: {', '.join(options)}" in out.stdout
    assert "threshold" in out.stdout and "scenario:" in out.stdout and "hydra:" not in out.stdout
    probe = "import runpy, sys; sys.argv = ['run.py', '--help']\ntry:\n    runpy.run_path('run.py', run_name='__main__')\nexcept SystemExit:\n    pass"
    loaded = loaded_modules(f"exec({probe!r})")
    assert "elastic_des.usage" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in ("hydra", "pandas")) == []
    assert "elastic_des.app" not in loaded


def test_help_flags_are_recognised_anywhere_on_the_command_line():
    assert wants_help(["--help"]) and wants_help(["seed=3", "-h"])
    assert not wants_help(["seed=3"]) and not wants_help(["--hydra-help"])
