"""The Hydra application: compose a config, run it, write its outputs.

``run(cfg, output_dir)`` is pure: everything it does follows from the config
and seed, it touches no global state, and it returns the summary dict.
``main`` is the thin Hydra entry point used by ``run.py`` and the
``elastic-des`` console script, and :class:`RunFolders` the Hydra callback
that validates a run before Hydra makes its folder.

A run with an output folder writes it through :mod:`elastic_des.runfolder`:
under a temporary name, moved into place complete, with a completion marker.
In a multirun a failing job is recorded as failed in its folder (the other
jobs still run; the sweep callback exits non-zero listing the failures), and
a job whose folder is already complete with the same config is skipped, so
rerunning an interrupted sweep resumes it.
"""

from __future__ import annotations

import copy
import logging
import os
import resource
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional, Union

import hydra
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

import elastic_des.config  # noqa: F401  (registers the schemas)
from elastic_des.agent.training import train
from elastic_des.analysis.counterfactual import explain
from elastic_des.objective import objective_value
from elastic_des.atomic import write_json, write_jsonl, write_parquet
from elastic_des.engine.simulation import WorldResult, simulate_world
from elastic_des.engine.workload import request_source
from elastic_des.errors import ConfigError
from elastic_des.factory import build
from elastic_des.forecasters.simple import EWMAForecaster
from elastic_des.policies.static import StaticPolicy
from elastic_des.progress import Progress
from elastic_des.request_files import RowGroupWriter, join_parts
from elastic_des.runfolder import building, check_creatable, check_writable, completed_summary, record_failure
from elastic_des.usage import CONF_DIR
from elastic_des.validate import validate
from elastic_des.worlds import process_count, run_worlds


def run_name(cfg: DictConfig, policy_name: str) -> str:
    return f"{cfg.scenario.name}__{policy_name}__{cfg.seed}"


def savings(candidate: dict, baseline: dict) -> dict:
    """How the policy's world compares with the static baseline."""
    base_cost, cost = baseline["cost/usd"], candidate["cost/usd"]
    return {
        "savings/cost_usd": base_cost - cost,
        "savings/cost_fraction": 1.0 - cost / base_cost if base_cost > 0 else float("nan"),
        "savings/sla_delta": candidate["sla/compliance"] - baseline["sla/compliance"],
    }


def timing(results: dict[str, WorldResult], processes: dict[str, dict]) -> dict:
    """Wall-clock figures of each world (``timing.json``): not results, so kept
    out of ``summary.json``, which the same config and seed reproduce byte for
    byte. ``setup_s`` is the part of ``wall_s`` before the first simulated
    event (the serving plan, a clairvoyant policy's plan, the
    forecaster's warm-up): not the
    simulation's cost per request. ``processes``: the
    process that ran each world (``pid``) and its peak resident memory when
    the world finished (``peak_rss_mb``; with ``run.workers=2`` the
    baseline's is its worker's own)."""
    out = {}
    for role, result in results.items():
        requests = result.summary["requests/total"]
        out[role] = {"wall_s": result.wall_s, "setup_s": result.setup_s,
                     "requests_per_wall_s": requests / result.wall_s if result.wall_s > 0 else float("nan"),
                     **processes[role]}
    return out


def _this_process() -> dict:
    # ru_maxrss is in KiB on Linux.
    return {"pid": os.getpid(), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _labelled(result: WorldResult, role: str, label: str) -> pd.DataFrame:
    return result.ticks.assign(role=role, world=label)


def simulate(cfg: DictConfig, output_dir: Optional[Path]) -> dict:
    """Simulate the policy's world and, if enabled, the static baseline world
    on the same arrivals; write both worlds' tables and the summary.

    Each world replays the requests window by window from the seeded streams
    (:mod:`elastic_des.engine.windows`) and holds only those in flight; with
    ``output.requests`` each world writes its rows as they retire
    (:mod:`elastic_des.request_files`). The worlds run in one process or two
    (``run.workers``, :mod:`elastic_des.worlds`), with identical results."""
    source = request_source(cfg.scenario, cfg.seed)
    policy = build(cfg.policy, "policy")
    forecaster = build(cfg.forecaster, "forecaster")
    name = run_name(cfg, policy.name)
    worlds = [("candidate", cfg.world, policy, forecaster)]
    if cfg.baseline.enabled:
        # A last-value forecaster: the static policy never reads forecasts.
        worlds.append(("baseline", cfg.baseline.world, StaticPolicy(cfg.baseline.replicas, field="baseline.replicas"), EWMAForecaster(alpha=1.0)))
    labels = {role: f"{world.name}/{world_policy.name}" for role, world, world_policy, _ in worlds}
    write_requests = output_dir is not None and cfg.output.requests
    parts = {role: output_dir / f".requests.{role}.parquet" for role in labels} if write_requests else {}
    processes = process_count(cfg.run.workers, len(worlds))

    def job(role, world, world_policy, world_forecaster,
            progress_shown: bool) -> Callable[[], tuple[WorldResult, dict]]:
        def simulate_one() -> tuple[WorldResult, dict]:
            field = "world" if role == "candidate" else "baseline.world"
            writer = RowGroupWriter(parts[role], role, labels[role]) if write_requests else None
            with Progress(cfg.scenario.duration_s, f"{name} [{labels[role]}]", "sim-s", progress_shown) as progress:
                result = simulate_world(
                    world, cfg.scenario, cfg.controller, world_policy, world_forecaster, source, cfg.seed,
                    progress.advance_to if progress.active else None,
                    field=field, record_requests=writer if writer is not None else False,
                )
            if writer is not None:
                writer.close()
            return result, _this_process()
        return simulate_one

    # One progress bar: a second process would draw over the first one's.
    jobs = [job(*w, cfg.output.progress and (processes == 1 or w[0] == "candidate")) for w in worlds]
    done = dict(zip(labels, run_worlds(jobs, processes)))
    results: dict[str, WorldResult] = {role: result for role, (result, _) in done.items()}
    summary = {
        "run/name": name,
        "run/scenario": cfg.scenario.name,
        "run/policy": policy.name,
        "run/world": labels["candidate"],
        "run/seed": cfg.seed,
        **results["candidate"].summary,
    }
    if "baseline" in results:
        summary["run/baseline"] = labels["baseline"]
        summary.update({f"baseline/{k}": v for k, v in results["baseline"].summary.items()})
        summary.update(savings(results["candidate"].summary, results["baseline"].summary))
    if output_dir is not None:
        write_parquet(output_dir / "ticks.parquet",
                      pd.concat([_labelled(r, role, labels[role]) for role, r in results.items()]))
        if write_requests:
            join_parts(list(parts.values()), output_dir / "requests.parquet")
        write_jsonl(output_dir / "decisions.jsonl",
                    ({"world": labels["candidate"], **d} for d in results["candidate"].decisions))
        write_json(output_dir / "summary.json", summary)
        write_json(output_dir / "timing.json", timing(results, {role: process for role, (_, process) in done.items()}))
        if cfg.output.report:
            # Loaded here, not at the top: matplotlib and seaborn take about a
            # second to import, which the application's import should not pay.
            from elastic_des.analysis.report import write_report

            write_report(output_dir, cfg)
    return summary


TASKS = {"simulate": simulate, "train": train, "explain": explain}


LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


@contextmanager
def run_log(folder: Path) -> Iterator[None]:
    """Log to ``folder/run.log`` for the duration of the block."""
    handler = logging.FileHandler(folder / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def run(cfg: DictConfig, output_dir: Optional[Path] = None, hydra_files: Mapping[str, str] = {}) -> dict:
    """Validate ``cfg``, run ``cfg.task`` and return its summary.

    With ``output_dir``, the task's files, ``.hydra/config.yaml`` (``cfg``)
    and the ``hydra_files`` (name: YAML text, beside it) are written under a
    temporary name and moved into place over ``output_dir`` when complete
    (:func:`elastic_des.runfolder.building`); on error ``output_dir`` is left
    as it was.
    """
    validate(cfg, tuple(TASKS))
    task = TASKS[cfg.task]
    if output_dir is None:
        return task(cfg, None)
    with building(Path(output_dir), OmegaConf.to_yaml(cfg), hydra_files) as staging:
        with run_log(staging):
            return task(cfg, staging)


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_summary(summary: dict) -> str:
    """The summary as a table: one row per metric, the policy's world beside the baseline."""
    if "run/name" not in summary:  # a task other than simulate: plain key, value lines
        width = max(map(len, summary), default=0)
        return "\n".join(f"{k:<{width}}  {_shown(v)}" for k, v in summary.items())
    keys = [k for k in summary if not k.startswith(("baseline/", "savings/", "run/"))]
    rows = [(k, _shown(summary[k]), _shown(summary.get(f"baseline/{k}", ""))) for k in keys]
    rows += [(k, _shown(v), "") for k, v in summary.items() if k.startswith("savings/")]
    header = ("metric", summary.get("run/world", "candidate"), summary.get("run/baseline", ""))
    width = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [f"{summary['run/name']}", "  ".join(h.ljust(w) for h, w in zip(header, width))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, width)).rstrip() for row in rows]
    return "\n".join(lines)


def _task_config(config: DictConfig) -> DictConfig:
    """The composed config without its ``hydra`` node, as the task receives it."""
    cfg = copy.deepcopy(config)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


def _one_line(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


class RunFolders(Callback):
    """Checks before Hydra makes any folder (registered in ``conf/config.yaml``).

    A single run is validated and its output folder checked (writable, and a
    run folder if it exists) before Hydra creates it, so bad input leaves no
    folder behind and an unwritable folder is an error message, not a
    traceback. A multirun checks that its sweep folder can be made; each job
    is validated by :func:`main`, which records a failure in the job's folder.
    """

    def __init__(self) -> None:
        # Made only by Hydra's command line: there, a warning reads as one line, like an error.
        warnings.formatwarning = _one_line

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(config)  # hydra.run.dir reads ${hydra:...}
        try:
            validate(_task_config(config), tuple(TASKS))
            check_writable(Path(config.hydra.run.dir))
        except ConfigError as exc:
            raise SystemExit(f"error: {exc}") from None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            check_creatable(Path(config.hydra.sweep.dir))
        except ConfigError as exc:
            raise SystemExit(f"error: {exc}") from None


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # made by Hydra for this run; an empty folder is no run
    except OSError:
        pass


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> Union[float, list[float], None]:
    """Run ``cfg``, print its summary and return ``cfg.objective``'s value
    to a sweeper (:func:`elastic_des.analysis.tuning.objective_value`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    config_yaml = OmegaConf.to_yaml(cfg)
    files = {"hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_cfg})),
             "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.overrides.task)}
    if multirun:
        done = completed_summary(output_dir, config_yaml)
        if done is not None:
            print(f"{output_dir.name}: already complete with the same config, skipped")
            return done.get("sla/compliance")
    try:
        summary = run(cfg, output_dir, files)
    except Exception as exc:
        if not multirun:
            _remove_if_empty(output_dir)
            if isinstance(exc, ConfigError):
                raise SystemExit(f"error: {exc}") from None
            raise
        # One failing job must not end the sweep: record it, let the others run.
        record_failure(output_dir, config_yaml, files, exc)
        print(f"error: job {output_dir.name} failed: {exc}", file=sys.stderr)
        return None
    print(format_summary(summary))
    print(f"outputs: {output_dir}")
    return objective_value(summary, cfg.objective, cfg.scenario.slo.target_compliance)
