"""Tune every baseline on every scenario of the policy suite with Hydra's Optuna sweeper.

    python benchmarks/tune_baselines.py                       # the suite of benchmarks/policies.py, 16 trials
    python benchmarks/tune_baselines.py --scenarios flash_crowd --policies threshold --trials 30

For each (scenario, policy) this runs ``python run.py -m
experiment=tune_<policy> scenario=<scenario>`` (objective
``penalized_cost``: cost with the SLA shortfall against ``--slo-target``
weighted 10×; see ``elastic_des/objective.py``) on ``--seed`` (not one of the
evaluation seeds 0–4 of ``benchmarks/policies.py``, so a tuned rule is judged
on traffic it was not tuned on), and writes the best knobs as
``benchmarks/tuned/policy/<policy>_tuned_<scenario>.yaml``.
``benchmarks/policies.py`` picks those files up (``hydra.searchpath``); the
ones in the repository were written by this script with its defaults. A
study that exists already is skipped unless ``--force``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from policies import ROOT, SUITE, TUNABLE, TUNED_DIR  # the suite and where it reads the tuned rules

from elastic_des.analysis.tuning import tuned_config_path


def tune(policy: str, scenario: str, trials: int, seed: int, slo_target: float, sweep_root: Path) -> None:
    command = [sys.executable, str(ROOT / "run.py"), "-m", f"experiment=tune_{policy}", f"scenario={scenario}",
               f"hydra.sweeper.n_trials={trials}", f"seed={seed}", f"scenario.slo.target_compliance={slo_target}",
               f"hydra.callbacks.tuned_config.config_dir={TUNED_DIR}", "output.progress=false",
               f"hydra.sweep.dir={sweep_root / f'{scenario}__{policy}'}"]
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", nargs="*", default=SUITE)
    parser.add_argument("--policies", nargs="*", default=TUNABLE, choices=TUNABLE)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--slo-target", type=float, default=0.999)
    parser.add_argument("--sweep-root", type=Path, default=ROOT / "outputs" / "tune_baselines")
    parser.add_argument("--force", action="store_true", help="re-tune studies whose tuned file exists")
    args = parser.parse_args(argv)
    studies = [(s, p) for s in args.scenarios for p in args.policies]
    for i, (scenario, policy) in enumerate(studies, 1):
        if tuned_config_path(TUNED_DIR, policy, scenario).is_file() and not args.force:
            print(f"[{i}/{len(studies)}] {policy} on {scenario}: tuned already ({tuned_config_path(TUNED_DIR, policy, scenario).name})")
            continue
        start = time.perf_counter()
        tune(policy, scenario, args.trials, args.seed, args.slo_target, args.sweep_root)
        print(f"[{i}/{len(studies)}] {policy} on {scenario}: {args.trials} trials in "
              f"{time.perf_counter() - start:.0f} s -> {tuned_config_path(TUNED_DIR, policy, scenario).relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
