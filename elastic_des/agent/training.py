"""Training the Q-learning autoscaler: ``python run.py task=train policy=q_learning``.

Episodes
    Each episode simulates the policy's world (the static baseline is not
    needed to learn) for ``train.episode_s`` seconds of a scenario drawn from
    ``train.distribution`` (:mod:`elastic_des.agent.distribution`): a
    synthetic one at 0.5–100 req/s with random shape, flash crowds, bursts
    and request sizes, or a window of a shipped replay, each with its own
    workload seed. The fleet starts at the Erlang C size for the episode's
    first rate, as if it had been tracking the load until then, and may grow
    to twice the Erlang C size of the episode's peak (above the world's
    ``max_replicas`` if need be), so that every drawn scale can be served.
Learning
    The :class:`~elastic_des.agent.policy.QLearningPolicy` runs in the
    controller loop with ε-greedy actions and a Bellman update per tick of
    both the cost and the SLA table (:mod:`elastic_des.agent.qtable`).
    ``train.episodes_per_round`` episodes start from the same table (in
    parallel with ``train.jobs`` processes); their transitions are then
    applied to the table in episode order, each exactly once, at the
    learning rate of the table's visit counts at that point. Q-learning is
    off-policy, so experience gathered under a table one round old is valid.
    The number of processes never changes the model, only how fast it is
    made. ε decays geometrically over the episodes, α with each pair's visits.
The SLA constraint
    After each round the Lagrange multiplier λ of the SLA constraint moves
    by dual ascent on the round's measured SLA:
    ``λ <- clip(λ · exp(lagrange_rate · clip(g, -1, 1)), ·, lagrange_max)``
    with ``g = quantile_episodes((1 - compliance) / (1 - slo_target),
    lagrange_quantile) - 1`` (the empirical quantile: one episode's value):
    up while more than ``1 - lagrange_quantile`` of the round's episodes (a
    quarter, by default: two of four) miss more than the error budget, down
    otherwise. Multiplicative steps keep λ positive and
    scale-free. A quantile, not the median: most drawn episodes are easy, and
    the median episode met the target at any λ, so λ sank until the hard
    ones (the flash crowds) were served cheaply and badly. Not the mean, and
    a ceiling, because the distribution holds episodes no policy serves at
    the target (a 4x flash crowd within one cold start): on those the
    constraint is infeasible, and a mean would let them drive λ without
    bound, until cost no longer counted at all.
Evaluation
    Before training, every ``train.eval_every`` rounds and at the end, the
    greedy policy (with its predictive fallback, no exploration, no
    learning) runs on ``train.eval_windows`` fixed draws of the distribution;
    before and after training it also runs on every validation scenario,
    whole, ``validation_seeds`` times: scenarios training never saw.
Outputs (with an output folder)
    ``learning_curve.csv`` (one row per episode, ``kind`` train, eval or
    validation), ``learning_curve.png``, ``validation.csv`` (the validation
    table, untrained and trained), ``state_coverage.csv`` (visits per
    visited state, with its bands), ``summary.json`` (coverage:
    ``train/state_coverage``, visits per state; validation means;
    ``train/wall_s`` and ``train/cpu_s``) and the model
    ``<train.model_dir>/<name>.npz`` + ``.json``.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from omegaconf import DictConfig, OmegaConf

from elastic_des import rng as rng_streams
from elastic_des.agent.curve import convergence, plot_learning_curve
from elastic_des.agent.distribution import draw_synthetic, validate_distribution
from elastic_des.agent.qtable import QTable
from elastic_des.atomic import to_json, write_json, write_text
from elastic_des.errors import require
from elastic_des.factory import build
from elastic_des.agent.policy import Learning, QLearningPolicy
from elastic_des.progress import Progress
from elastic_des.engine.service import serving_plan
from elastic_des.engine.simulation import simulate_world
from elastic_des.theory import replicas_for_slo
from elastic_des.engine.workload import build_workload

Q_LEARNING_TARGET = "elastic_des.agent.policy.QLearningPolicy"


@dataclass(frozen=True)
class Episode:
    """One simulated scenario: ``kind`` train (learning), eval (greedy, a
    fixed draw of the distribution) or validation (greedy, held out)."""

    kind: str
    number: int  # train: episode index; eval/validation: episodes trained so far
    scenario_name: str
    seed: int
    epsilon: float
    scenario: dict


def window_scenario(scenario: Any, offset_s: float, duration_s: float) -> DictConfig:
    """The scenario's ``[offset_s, offset_s + duration_s)`` as a scenario of its own.

    A synthetic profile is shifted exactly (cycle peaks move, the trend is
    re-based, spikes are clipped to the window); a trace starts ``offset_s``
    later. The noise is drawn afresh from the episode's seed.
    """
    data = OmegaConf.to_container(scenario, resolve=True)
    data["duration_s"] = float(duration_s)
    workload = data["workload"]
    if workload["trace"]["path"] is not None:
        workload["trace"]["start_s"] += offset_s * workload["trace"]["time_compression"]
        return OmegaConf.create(data)
    workload["diurnal_peak_s"] -= offset_s
    workload["weekly_peak_s"] -= offset_s
    # 1 + k (t + o) / 3600 = (1 + k o / 3600) (1 + k' t / 3600) with k' = k / (1 + k o / 3600).
    level = 1.0 + workload["trend_per_hour"] * offset_s / 3600.0
    workload["base_rate_rps"] *= level
    workload["trend_per_hour"] /= level
    spikes = []
    for spike in workload["spikes"]:
        start, end = spike["start_s"] - offset_s, spike["start_s"] + spike["duration_s"] - offset_s
        if end > 0 and start < duration_s:
            start, end = max(start, 0.0), min(end, duration_s)
            spikes.append({**spike, "start_s": start, "duration_s": end - start})
    workload["spikes"] = spikes
    return OmegaConf.create(data)


def _erlang_c_replicas(world: Any, scenario: Any, rate_rps: float) -> int:
    slo = scenario.slo
    plan = serving_plan(world.model, scenario.workload, slo)
    return replicas_for_slo(rate_rps, plan.mean_service_s, plan.slots, plan.latency_s, slo.target_compliance,
                            max_replicas=10**6)


def run_episode(cfg_data: dict, table: QTable, episode: Episode) -> dict:
    """Simulate one episode from ``table``; returns its transitions (train
    episodes), metrics and decisions' fallback share. Runs in a worker process."""

    cfg = OmegaConf.create(cfg_data)
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    policy: QLearningPolicy = build(cfg.policy, "policy")
    policy.table = table.copy()
    learning = None
    if episode.kind == "train":
        learning = learner(cfg.train, episode.epsilon, rng_streams.stream(episode.seed, "train/explore"))
        policy.learn(learning)
    scenario = OmegaConf.create(episode.scenario)
    workload = build_workload(scenario, episode.seed)
    world = OmegaConf.create(OmegaConf.to_container(cfg.world, resolve=True))
    fleet = world.fleet
    fleet.max_replicas = max(fleet.max_replicas, 2 * _erlang_c_replicas(world, scenario, workload.profile.peak_rps))
    first = _erlang_c_replicas(world, scenario, float(workload.profile.rate(np.zeros(1))[0]))
    fleet.initial_replicas = min(max(first, fleet.min_replicas), fleet.max_replicas)
    # An episode reads its summary and decisions only: no clairvoyant limit, no request table.
    result = simulate_world(world, scenario, cfg.controller, policy, build(cfg.forecaster, "forecaster"),
                            workload, episode.seed, oracle_limit=False, record_requests=False)
    multiplier = policy.table.multiplier
    parts = [(d["details"]["reward_cost"], d["details"]["reward_sla"]) for d in result.decisions
             if d["details"]["reward_cost"] is not None]
    summary = result.summary
    metrics = {
        **{k: v for k, v in asdict(episode).items() if k != "scenario"},
        "rate_mean_rps": workload.profile.mean_rps,
        "reward_mean": float(np.mean([-(c + multiplier * s) for c, s in parts])),
        "sla_budgets_mean": float(np.mean([s for _, s in parts])),
        "sla_compliance": summary["sla/compliance"],
        "sla_target": scenario.slo.target_compliance,
        "cost_usd_per_hour": summary["cost/usd"] * 3600.0 / scenario.duration_s,
        "latency_p99_s": summary["latency/p99_s"],
        "replicas_mean": summary["replicas/mean"],
        "scaling_actions": summary["scaling/actions"],
        "direction_changes": summary["scaling/direction_changes"],
        "explored": float(np.mean([d["rule"] == "explore" for d in result.decisions])),
        "fallback_share": float(np.mean([d["rule"] == "fallback_predictive" for d in result.decisions])),
        "multiplier": multiplier,
        "wall_s": time.perf_counter() - wall_start,
        "cpu_s": time.process_time() - cpu_start,
    }
    transitions = np.array(learning.transitions if learning else np.empty((0, 5)), dtype=float).reshape(-1, 5)
    return {"metrics": metrics, "transitions": transitions}


def learner(t: Any, epsilon: float, rng: Optional[np.random.Generator] = None) -> Learning:
    return Learning(t.gamma, t.alpha_power, t.alpha_min, epsilon, rng)


def decay(start: float, end: float, n: int) -> np.ndarray:
    """``n`` values falling geometrically from ``start`` to ``end``."""
    return np.geomspace(start, end, n) if n > 1 else np.array([start])


def validate_training(cfg: DictConfig) -> None:
    """The train group and its cross-field rules (run by :func:`elastic_des.validate.validate`)."""
    t = cfg.train
    require(cfg.policy.get("_target_") == Q_LEARNING_TARGET, "policy", cfg.policy.get("_target_"),
            "task=train trains the q_learning policy; add policy=q_learning")
    require(cfg.policy.model_path is None, "policy.model_path", cfg.policy.model_path,
            "training starts from an empty table; leave it null (the model is written under train.model_dir)")
    require(cfg.seed >= 0, "seed", cfg.seed, "must be >= 0")
    require(t.episodes >= 1, "train.episodes", t.episodes, "must be >= 1")
    require(t.episode_s > 2 * cfg.controller.tick_s, "train.episode_s", t.episode_s, "must be longer than two ticks")
    require(t.episodes_per_round >= 1, "train.episodes_per_round", t.episodes_per_round, "must be >= 1")
    require(t.jobs >= 1, "train.jobs", t.jobs, "must be >= 1")
    require(0 < t.epsilon_start <= 1, "train.epsilon_start", t.epsilon_start, "must be in (0, 1]")
    require(0 < t.epsilon_end <= t.epsilon_start, "train.epsilon_end", t.epsilon_end,
            "must be in (0, train.epsilon_start]")
    require(math.isfinite(t.lagrange_rate) and t.lagrange_rate >= 0, "train.lagrange_rate", t.lagrange_rate,
            "must be finite and >= 0")
    require(math.isfinite(t.lagrange_max) and t.lagrange_max >= cfg.policy.reward.sla, "train.lagrange_max",
            t.lagrange_max, f"must be finite and >= policy.reward.sla ({cfg.policy.reward.sla})")
    require(0 <= t.lagrange_quantile <= 1, "train.lagrange_quantile", t.lagrange_quantile, "must be in [0, 1]")
    learner(t, 0.0)  # validates gamma and the learning rate
    require(t.eval_every >= 1, "train.eval_every", t.eval_every, "must be >= 1")
    require(t.eval_windows >= 1, "train.eval_windows", t.eval_windows, "must be >= 1")
    validate_distribution(t, cfg.scenario)


def config_hash(cfg: DictConfig) -> str:
    """SHA-256 of everything that shapes the model (not where it is written or how many processes ran)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    train = {k: v for k, v in data["train"].items() if k not in ("jobs", "model_dir", "model_name")}
    relevant = {k: data[k] for k in ("seed", "scenario", "world", "policy", "forecaster", "controller")}
    return hashlib.sha256(to_json({**relevant, "train": train}, sort_keys=True).encode()).hexdigest()


def dual_ascent(multiplier: float, budgets: list[float], rate: float, ceiling: float, quantile: float) -> float:
    """The Lagrange multiplier after a round whose episodes missed ``budgets``
    SLO error budgets each (1: exactly the allowed share); see the module docs."""
    gap = float(np.quantile(budgets, quantile, method="inverted_cdf")) - 1.0  # an episode's own value
    return min(ceiling, multiplier * math.exp(rate * float(np.clip(gap, -1.0, 1.0))))


def draw_episode(cfg: DictConfig, named: dict, kind: str, number: int, rng: np.random.Generator,
                 epsilon: float) -> Episode:
    """An episode of the distribution: a synthetic scenario, or a window of a replay."""
    d, t = cfg.train.distribution, cfg.train
    seed = int(rng.integers(2**31))
    if len(d.replays) and rng.random() < d.replay_share:
        name = str(d.replays[int(rng.integers(len(d.replays)))])
        replay = named[name]
        length = min(t.episode_s, replay.duration_s)
        scenario = window_scenario(replay, float(rng.uniform(0, replay.duration_s - length)), length)
        scenario.slo.target_compliance = float(d.slo_target)
        return Episode(kind, number, name, seed, epsilon, OmegaConf.to_container(scenario, resolve=True))
    data = draw_synthetic(d, cfg.scenario, t.episode_s, rng, f"synthetic_{kind}_{number}")
    return Episode(kind, number, "synthetic", seed, epsilon, data)


def validation_episodes(cfg: DictConfig, named: dict, trained: int) -> list[Episode]:
    d = cfg.train.distribution
    seeds = rng_streams.stream(cfg.seed, "train/validation").integers(2**31, size=d.validation_seeds)
    episodes = []
    for name in d.validation:
        data = OmegaConf.to_container(named[name], resolve=True)
        data["slo"]["target_compliance"] = float(d.slo_target)
        episodes.extend(Episode("validation", trained, name, int(s), 0.0, data) for s in seeds)
    return episodes


def train(cfg: DictConfig, output_dir: Optional[Path]) -> dict:
    """Train the q_learning policy of ``cfg`` (validated by :func:`elastic_des.validate.validate`);
    see the module docs. Returns the summary."""
    t = cfg.train
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    named = validate_distribution(t, cfg.scenario)
    data = OmegaConf.to_container(cfg, resolve=True)
    data["policy"]["untrained"] = True
    policy = QLearningPolicy(**{k: v for k, v in data["policy"].items() if k != "_target_"})
    table = policy.table
    draws = rng_streams.stream(cfg.seed, "train/episodes")
    epsilons = decay(t.epsilon_start, t.epsilon_end, t.episodes)
    episodes = [draw_episode(cfg, named, "train", i, draws, float(epsilons[i])) for i in range(t.episodes)]
    eval_draws = rng_streams.stream(cfg.seed, "train/eval")
    evals = [draw_episode(cfg, named, "eval", w, eval_draws, 0.0) for w in range(t.eval_windows)]
    replay = learner(t, 0.0)

    rows: list[dict] = []
    transitions = 0
    bar = Progress(t.episodes, "training episodes", "ep", cfg.output.progress)
    with Parallel(n_jobs=t.jobs) as parallel:
        def run_all(batch: list[Episode]) -> list[dict]:
            return parallel(delayed(run_episode)(data, table, e) for e in batch)

        def evaluate(trained: int, validation: bool) -> None:
            batch = [Episode("eval", trained, e.scenario_name, e.seed, 0.0, e.scenario) for e in evals]
            batch += validation_episodes(cfg, named, trained) if validation else []
            results = [r["metrics"] for r in run_all(batch)]
            rows.extend(results)
            bar.set_postfix(f"eval_reward={np.mean([r['reward_mean'] for r in results]):.3f}")

        evaluate(0, True)
        n_rounds = math.ceil(t.episodes / t.episodes_per_round)
        for r in range(n_rounds):
            batch = episodes[r * t.episodes_per_round:(r + 1) * t.episodes_per_round]
            budgets = []
            for episode, result in zip(batch, run_all(batch)):
                for s, a, cost, sla, s2 in result["transitions"]:
                    replay.update(table, int(s), int(a), cost, sla, int(s2))
                transitions += len(result["transitions"])
                rows.append(result["metrics"])
                m = result["metrics"]
                budgets.append((1.0 - m["sla_compliance"]) / (1.0 - m["sla_target"]))
            table.multiplier = dual_ascent(table.multiplier, budgets, t.lagrange_rate, t.lagrange_max,
                                          t.lagrange_quantile)
            bar.update(len(batch))
            last = r == n_rounds - 1
            if (r + 1) % t.eval_every == 0 or last:
                evaluate(batch[-1].number + 1, last)
    bar.close()
    curve = pd.DataFrame(rows)
    cpu_s = time.process_time() - cpu_start + (float(curve["cpu_s"].sum()) if t.jobs > 1 else 0.0)
    wall_s = time.perf_counter() - wall_start
    coverage = state_coverage(table, policy)
    validation = validation_table(curve)
    visited = table.visits.sum(axis=1)
    summary = {
        "run/name": f"{cfg.scenario.name}__q_learning__{cfg.seed}",
        "run/task": "train",
        "run/world": cfg.world.name,
        "run/seed": cfg.seed,
        "train/wall_s": wall_s,
        "train/cpu_s": cpu_s,
        "train/episodes": t.episodes,
        "train/transitions": transitions,
        "train/lagrange_multiplier": table.multiplier,
        "train/states": int(table.shape[0]),
        "train/states_visited": int((visited > 0).sum()),
        "train/state_coverage": float((visited > 0).mean()),
        "train/visits_per_state_median": float(np.median(visited[visited > 0])) if (visited > 0).any() else 0.0,
        "train/states_trusted": int((visited >= policy.min_visits).sum()),
        **convergence(curve),
        **{f"validation/{row.scenario_name}/{col}": getattr(row, col)
           for row in validation[validation["number"] == validation["number"].max()].itertuples()
           for col in ("sla_compliance", "cost_usd_per_hour", "latency_p99_s", "fallback_share")},
        "train/config_hash": config_hash(cfg),
    }
    if output_dir is not None:
        name = t.model_name or f"{cfg.scenario.name}__{cfg.world.name}__{cfg.seed}"
        model_path = Path(t.model_dir) / f"{name}.npz"
        table.save(model_path, {
            "problem": policy.mdp.describe(),
            "config_hash": summary["train/config_hash"],
            "training": {
                **{k: data["train"][k] for k in data["train"] if k not in ("model_dir", "model_name")},
                "seed": cfg.seed, "world": cfg.world.name,
                "forecaster": data["forecaster"], "controller": data["controller"],
                "wall_s": wall_s, "cpu_s": cpu_s, "transitions": transitions,
                "coverage": {k: summary[k] for k in summary if k.startswith("train/sta")},
                "final_eval": {k: summary[k] for k in summary if k.startswith(("eval/final", "validation/"))},
            },
        })
        summary["train/model_path"] = str(model_path)
        write_text(output_dir / "learning_curve.csv", curve.to_csv(index=False))
        write_text(output_dir / "validation.csv", validation.to_csv(index=False))
        write_text(output_dir / "state_coverage.csv", coverage.to_csv(index=False))
        plot_learning_curve(curve, output_dir / "learning_curve.png")
        write_json(output_dir / "summary.json", summary)
    return summary


def state_coverage(table: QTable, policy: QLearningPolicy) -> pd.DataFrame:
    """One row per visited state: its bands, visits (all actions) and actions tried."""
    visits = table.visits.sum(axis=1)
    rows = []
    encoder = policy.mdp.encoder
    for state in np.flatnonzero(visits):
        bands = dict(zip([c["name"] for c in encoder.describe()["components"]], encoder.unindex(int(state))))
        rows.append({"state": int(state), **bands, "visits": int(visits[state]),
                     "actions_tried": int((table.visits[state] > 0).sum())})
    return pd.DataFrame(rows)


def validation_table(curve: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over seeds of each validation scenario, untrained and trained."""
    held_out = curve[curve["kind"] == "validation"]
    columns = ["sla_compliance", "sla_target", "cost_usd_per_hour", "latency_p99_s", "scaling_actions",
               "direction_changes", "fallback_share"]
    table = held_out.groupby(["number", "scenario_name"])[columns].mean().reset_index()
    spread = held_out.groupby(["number", "scenario_name"])["sla_compliance"].agg(["min", "max", "count"])
    return table.merge(spread.rename(columns=lambda c: f"sla_{c}" if c != "count" else "seeds").reset_index())
