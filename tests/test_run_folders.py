"""Run folders a user can trust: written whole or not at all, named apart,
never mixed, read only when complete, and never a way to run foreign code.

The command-line tests run ``python run.py`` in a temporary working folder,
so Hydra's default output folders (``outputs/runs/...``) land there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import compose_config
from elastic_des.analysis.counterfactual import load_run_config
from elastic_des.analysis.sweep import collect
from elastic_des.app import TASKS, run
from elastic_des.errors import ConfigError
from elastic_des.factory import check_targets
from elastic_des.runfolder import MARKER, config_sha256, incomplete_reason, record_failure, run_dirname

ROOT = Path(__file__).resolve().parent.parent
SHORT = ("scenario.duration_s=600", "output.progress=false", "output.report=false")


def cli(cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_run_folder_is_complete_with_its_config_hash(make_cfg, tmp_path):
    folder = tmp_path / "run"
    run(make_cfg(*SHORT), folder)
    marker = json.loads((folder / MARKER).read_text())
    assert marker["config_sha256"] == config_sha256((folder / ".hydra" / "config.yaml").read_text())
    assert set(marker["files"]) == set(files(folder)) - {MARKER}
    assert {"summary.json", "ticks.parquet", "decisions.jsonl", "timing.json", "run.log"} <= set(marker["files"])
    assert incomplete_reason(folder) is None
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no partial folder left beside it


def test_a_rerun_replaces_the_folder_never_mixes_files(make_cfg, tmp_path):
    folder = tmp_path / "run"
    run(make_cfg(*SHORT), folder)
    assert (folder / "requests.parquet").is_file()
    run(make_cfg(*SHORT, "output.requests=false"), folder)
    assert not (folder / "requests.parquet").exists()  # the old run's table is gone with the old run
    assert yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())["output"]["requests"] is False
    assert incomplete_reason(folder) is None
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_run_failing_half_way_leaves_the_old_folder_as_it_was(make_cfg, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    run(make_cfg(*SHORT), folder)
    before = files(folder)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while drawing")

    monkeypatch.setattr("elastic_des.analysis.report.write_report", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run(make_cfg(*SHORT, "output.report=true", "seed=3"), folder)  # fails after its tables are written
    assert files(folder) == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_folder_of_other_files_is_never_replaced(make_cfg, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a run's"):
        run(make_cfg(*SHORT), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_readers_skip_or_refuse_an_incomplete_folder(make_cfg, tmp_path, caplog):
    sweep = tmp_path / "sweep"
    for seed in (0, 1):
        run(make_cfg(*SHORT, f"seed={seed}"), sweep / f"job{seed}")
    (sweep / "job1" / MARKER).unlink()  # as if killed before its last file
    assert "did not finish" in incomplete_reason(sweep / "job1")
    with pytest.raises(ConfigError, match="explain.run_dir = .*job1.*did not finish"):
        load_run_config(sweep / "job1")
    assert list(collect(sweep)["sweep/job_dir"]) == ["job0"]
    assert "job1 (it has no complete.json" in caplog.text
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        from dashboard.runs import load_run

        with pytest.raises(ConfigError, match="dashboard.run_dir = .*job1.*it has no complete.json"):
            load_run(sweep / "job1")
    config = sweep / "job0" / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("seed: 0", "seed: 5"))  # edited after the run
    with pytest.raises(ConfigError, match="not the config it was made with"):
        load_run_config(sweep / "job0")


def test_explaining_a_failed_run_says_it_failed(tmp_path):
    failed = tmp_path / "failed_run"
    record_failure(failed, "task: simulate\n", {}, ConfigError("scenario.workload.base_rate_rps = -1.0: must be > 0"))
    result = cli(tmp_path, "task=explain", f"explain.run_dir={failed}", "explain.tick=3", "output.progress=false")
    assert result.returncode != 0
    assert "the run failed: scenario.workload.base_rate_rps = -1.0" in result.stderr
    assert "Traceback" not in result.stderr


def _plant_foreign_target(folder: Path, victim: Path) -> None:
    """Make ``folder`` a complete run folder whose config builds ``open(victim, 'w')``
    (a shared folder's marker is as easy to forge as its config)."""
    path = folder / ".hydra" / "config.yaml"
    cfg = OmegaConf.load(path)
    cfg.policy = {"_target_": "builtins.open", "_args_": [str(victim), "w"]}
    text = OmegaConf.to_yaml(cfg)
    path.write_text(text)
    marker = json.loads((folder / MARKER).read_text())
    (folder / MARKER).write_text(json.dumps({**marker, "config_sha256": config_sha256(text)}))


def test_a_foreign_target_in_a_recorded_config_is_refused(make_cfg, tmp_path):
    folder = tmp_path / "shared_run"
    run(make_cfg(*SHORT, "output.requests=false"), folder)
    victim = tmp_path / "created_by_the_config"
    _plant_foreign_target(folder, victim)
    explain_cfg = compose_config("task=explain", f"explain.run_dir={folder}", "explain.tick=3", "output.progress=false")
    with pytest.raises(ConfigError, match=r"policy\._target_ = 'builtins.open': only the project's own classes"):
        run(explain_cfg)
    assert not victim.exists()
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        from dashboard.runs import load_run

        with pytest.raises(ConfigError, match=r"dashboard.run_dir = .*policy\._target_ = 'builtins.open'"):
            load_run(folder)
    assert not victim.exists()


@pytest.mark.parametrize("target", ["elastic_des.policies.static.ConfigError", "elastic_des.policies.hpa.math.floor",
                                    "elastic_des.policies.nonexistent.Policy", "os.system"])
def test_only_classes_defined_in_the_project_are_targets(target):
    """An allowed prefix is not enough: whatever a project module imports is not a target."""
    with pytest.raises(ConfigError, match="only the project's own classes"):
        check_targets({"policy": {"_target_": target}}, "")
    check_targets({"policy": {"_target_": "elastic_des.policies.static.StaticPolicy"}}, "")


def test_run_names_carry_a_digest_of_the_other_overrides():
    assert run_dirname("default", "threshold", 0, "") == "default__threshold__0"
    one = run_dirname("default", "threshold", 0, "scenario.duration_s=21600")
    assert one == run_dirname("default", "threshold", 0, "scenario.duration_s=21600")  # stable
    # a multirun spells booleans as Python does, a single run as typed: one name for both
    assert (run_dirname("default", "threshold", 0, "baseline.enabled=False,scenario.duration_s=1800")
            == run_dirname("default", "threshold", 0, "baseline.enabled=false,scenario.duration_s=1800"))
    assert one.startswith("default__threshold__0__") and len(one.rsplit("__", 1)[1]) == 8
    assert one != run_dirname("default", "threshold", 0, "scenario.duration_s=7200")


@pytest.mark.slow
def test_cli_runs_that_differ_land_in_different_folders(tmp_path):
    """``scenario.duration_s=...`` no longer overwrites the default run, and the
    same command lands in the same folder again (replacing it). Slow: three
    command-line runs (about 10 s each on a loaded 2-core machine)."""
    for duration in (300, 600, 300):
        result = cli(tmp_path, f"scenario.duration_s={duration}", "output.progress=false", "output.report=false")
        assert result.returncode == 0, result.stderr
    runs = sorted(p.name for p in (tmp_path / "outputs" / "runs").iterdir())
    assert runs == sorted(run_dirname("default", "threshold", 0, f"output.report=false,scenario.duration_s={d}")
                          for d in (300, 600))
    for name in runs:
        assert incomplete_reason(tmp_path / "outputs" / "runs" / name) is None


def test_cli_bad_input_makes_no_folder(tmp_path):
    result = cli(tmp_path, "scenario.workload.base_rate_rps=-2")
    assert result.returncode != 0 and "scenario.workload.base_rate_rps = -2" in result.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("mode", [(), ("-m", "seed=0,1")])
def test_cli_unwritable_output_folder_is_an_error_not_a_traceback(tmp_path, mode):
    (tmp_path / "a_file").write_text("not a folder")
    where = "hydra.sweep.dir" if mode else "hydra.run.dir"
    result = cli(tmp_path, *mode, "scenario.duration_s=60", f"{where}={tmp_path / 'a_file' / 'out'}")
    assert result.returncode != 0
    assert "cannot be written" in result.stderr and str(tmp_path / "a_file" / "out") in result.stderr
    assert "Traceback" not in result.stderr


def test_files_written_into_the_final_folder_during_a_run_are_not_deleted(make_cfg, tmp_path, monkeypatch):
    """The old folder is replaced only if it is still a run folder when the new one is ready."""
    folder = tmp_path / "run"
    simulate = TASKS["simulate"]

    def writes_beside(cfg, output_dir):
        folder.mkdir(exist_ok=True)
        (folder / "model.npz").write_text("someone else's file")
        return simulate(cfg, output_dir)

    monkeypatch.setitem(TASKS, "simulate", writes_beside)
    with pytest.raises(ConfigError, match="refusing to replace it"):
        run(make_cfg(*SHORT), folder)
    assert (folder / "model.npz").read_text() == "someone else's file"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.slow
def test_cli_failed_rerun_leaves_the_old_run_folder_untouched(tmp_path):
    """A rerun into the same folder that fails used to rewrite its .hydra/config.yaml
    beside the old summary.json. Slow: two command-line runs."""
    folder = tmp_path / "run"
    assert cli(tmp_path, *SHORT, f"hydra.run.dir={folder}").returncode == 0
    before = files(folder)
    result = cli(tmp_path, *SHORT, "scenario.workload.base_rate_rps=-1", f"hydra.run.dir={folder}")
    assert result.returncode != 0 and "base_rate_rps = -1" in result.stderr
    assert files(folder) == before
