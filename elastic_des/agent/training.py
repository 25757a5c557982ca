"""Training the Q-learning autoscaler: ``python run.py task=train policy=q_learning``.

Episodes
    Each episode simulates the policy's world (the static baseline is not
    needed to learn) over a window of ``train.episode_s`` seconds of the
    scenario, starting at a time drawn uniformly over it, with its own
    workload seed: the agent sees every phase of the day (night, morning
    ramp, peak, flash crowd, evening) in random order and on fresh noise.
    The fleet starts at the Erlang C size for the window's first rate, as if
    it had been tracking the load until then.
Learning
    The :class:`~elastic_des.agent.policy.QLearningPolicy` runs in the
    controller loop with ε-greedy actions and a Bellman update per tick.
    ``train.episodes_per_round`` episodes start from the same table (in
    parallel with ``train.jobs`` processes); their transitions are then
    applied to the table in episode order, each exactly once, at the
    learning rate of the table's visit counts at that point. Q-learning is
    off-policy, so experience gathered under a table one round old is valid;
    with one episode per round this is plain sequential Q-learning. The number of processes never changes the
    model, only how fast it is made. ε decays geometrically over the
    episodes, α with each pair's visits (:func:`~elastic_des.agent.qtable.visit_rate`).
Evaluation
    Before training, every ``train.eval_every`` rounds and at the end, the
    greedy policy (no exploration, no learning) runs on ``train.eval_windows``
    fixed windows evenly spaced over the scenario with fixed seeds, so those
    points of the learning curve are comparable with each other.
Outputs (with an output folder)
    ``learning_curve.csv`` (one row per episode, ``kind`` train or eval),
    ``learning_curve.png``, ``summary.json`` and the model
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
from elastic_des.agent.qtable import QTable
from elastic_des.atomic import atomic_path, to_json, write_json, write_text
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
    """One simulated window: ``kind`` train (learning) or eval (greedy)."""

    kind: str
    number: int  # train: episode index; eval: episodes trained so far
    window: int  # eval: which window; train: -1
    seed: int
    offset_s: float
    epsilon: float


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
    needed = replicas_for_slo(rate_rps, plan.mean_service_s, plan.slots, plan.latency_s, slo.target_compliance,
                              max_replicas=10**6)
    return min(max(needed, world.fleet.min_replicas), world.fleet.max_replicas)


def run_episode(cfg_data: dict, values: np.ndarray, visits: np.ndarray, episode: Episode) -> dict:
    """Simulate one episode from the table ``(values, visits)``; returns its
    transitions (train episodes) and metrics. Runs in a worker process."""

    cfg = OmegaConf.create(cfg_data)
    wall_start = time.perf_counter()
    policy: QLearningPolicy = build(cfg.policy, "policy")
    policy.table = QTable(values.copy(), visits.copy(), policy.mdp.hold_action)
    learning = None
    if episode.kind == "train":
        learning = learner(cfg.train, episode.epsilon, rng_streams.stream(episode.seed, "train/explore"))
        policy.learn(learning)
    scenario = window_scenario(cfg.scenario, episode.offset_s, cfg.train.episode_s)
    workload = build_workload(scenario, episode.seed)
    world = OmegaConf.create(OmegaConf.to_container(cfg.world, resolve=True))
    world.fleet.initial_replicas = _erlang_c_replicas(world, scenario, float(workload.profile.rate(np.zeros(1))[0]))
    result = simulate_world(world, scenario, cfg.controller, policy, build(cfg.forecaster, "forecaster"),
                            workload, episode.seed)
    rewards = [d["details"]["reward"] for d in result.decisions if d["details"]["reward"] is not None]
    summary = result.summary
    metrics = {
        **asdict(episode),
        "reward_mean": float(np.mean(rewards)),
        "sla_compliance": summary["sla/compliance"],
        "cost_usd_per_hour": summary["cost/usd"] * 3600.0 / cfg.train.episode_s,
        "latency_p99_s": summary["latency/p99_s"],
        "replicas_mean": summary["replicas/mean"],
        "scaling_actions": summary["scaling/actions"],
        "direction_changes": summary["scaling/direction_changes"],
        "explored": float(np.mean([d["rule"] == "explore" for d in result.decisions])),
        "wall_s": time.perf_counter() - wall_start,
    }
    transitions = np.array(learning.transitions if learning else np.empty((0, 4)), dtype=float).reshape(-1, 4)
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
    require(2 * cfg.controller.tick_s < t.episode_s <= cfg.scenario.duration_s, "train.episode_s", t.episode_s,
            f"must be longer than two ticks and at most scenario.duration_s ({cfg.scenario.duration_s})")
    require(t.episodes_per_round >= 1, "train.episodes_per_round", t.episodes_per_round, "must be >= 1")
    require(t.jobs >= 1, "train.jobs", t.jobs, "must be >= 1")
    require(0 < t.epsilon_start <= 1, "train.epsilon_start", t.epsilon_start, "must be in (0, 1]")
    require(0 < t.epsilon_end <= t.epsilon_start, "train.epsilon_end", t.epsilon_end,
            "must be in (0, train.epsilon_start]")
    learner(t, 0.0)  # validates gamma and the learning rate
    require(t.eval_every >= 1, "train.eval_every", t.eval_every, "must be >= 1")
    require(t.eval_windows >= 1, "train.eval_windows", t.eval_windows, "must be >= 1")


def config_hash(cfg: DictConfig) -> str:
    """SHA-256 of everything that shapes the model (not where it is written or how many processes ran)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    train = {k: v for k, v in data["train"].items() if k not in ("jobs", "model_dir", "model_name")}
    relevant = {k: data[k] for k in ("seed", "scenario", "world", "policy", "forecaster", "controller")}
    return hashlib.sha256(to_json({**relevant, "train": train}, sort_keys=True).encode()).hexdigest()


def train(cfg: DictConfig, output_dir: Optional[Path]) -> dict:
    """Train the q_learning policy of ``cfg`` (validated by :func:`elastic_des.validate.validate`);
    see the module docs. Returns the summary."""
    t = cfg.train
    wall_start = time.perf_counter()
    data = OmegaConf.to_container(cfg, resolve=True)
    data["policy"]["untrained"] = True
    reward = data["policy"]["reward"]
    if reward["reference_replicas"] is None:  # the cost unit of the whole scenario, not of each window
        peak = build_workload(cfg.scenario, cfg.seed).profile.peak_rps
        reward["reference_replicas"] = _erlang_c_replicas(cfg.world, cfg.scenario, peak)
    policy = QLearningPolicy(**{k: v for k, v in data["policy"].items() if k != "_target_"})
    table = QTable.zeros(policy.mdp.encoder.n_states, policy.mdp.n_actions, policy.mdp.hold_action)

    span = cfg.scenario.duration_s - t.episode_s
    draws = rng_streams.stream(cfg.seed, "train/episodes")
    epsilons = decay(t.epsilon_start, t.epsilon_end, t.episodes)
    episodes = [Episode("train", i, -1, int(draws.integers(2**31)), float(draws.uniform(0, span)), float(epsilons[i]))
                for i in range(t.episodes)]
    replay = learner(t, 0.0)
    eval_seeds = rng_streams.stream(cfg.seed, "train/eval").integers(2**31, size=t.eval_windows)
    eval_offsets = np.linspace(0.0, span, t.eval_windows) if t.eval_windows > 1 else np.zeros(1)

    rows: list[dict] = []
    transitions = 0
    bar = Progress(t.episodes, "training episodes", "ep", cfg.output.progress)
    with Parallel(n_jobs=t.jobs) as parallel:
        def run_all(batch: list[Episode]) -> list[dict]:
            return parallel(delayed(run_episode)(data, table.values, table.visits, e) for e in batch)

        def evaluate(trained: int) -> None:
            batch = [Episode("eval", trained, w, int(s), float(o), 0.0)
                     for w, (s, o) in enumerate(zip(eval_seeds, eval_offsets))]
            results = [r["metrics"] for r in run_all(batch)]
            rows.extend(results)
            bar.set_postfix(f"eval_reward={np.mean([r['reward_mean'] for r in results]):.3f}")

        evaluate(0)
        n_rounds = math.ceil(t.episodes / t.episodes_per_round)
        for r in range(n_rounds):
            batch = episodes[r * t.episodes_per_round:(r + 1) * t.episodes_per_round]
            for episode, result in zip(batch, run_all(batch)):
                for s, a, reward, s2 in result["transitions"]:
                    replay.update(table, int(s), int(a), reward, int(s2))
                transitions += len(result["transitions"])
                rows.append(result["metrics"])
            bar.update(len(batch))
            if (r + 1) % t.eval_every == 0 or r == n_rounds - 1:
                evaluate(batch[-1].number + 1)
    bar.close()
    wall_s = time.perf_counter() - wall_start
    curve = pd.DataFrame(rows)
    summary = {
        "run/name": f"{cfg.scenario.name}__q_learning__{cfg.seed}",
        "run/task": "train",
        "run/scenario": cfg.scenario.name,
        "run/world": cfg.world.name,
        "run/seed": cfg.seed,
        "train/wall_s": wall_s,
        "train/episodes": t.episodes,
        "train/transitions": transitions,
        "train/states_visited": int((table.visits.sum(axis=1) > 0).sum()),
        "train/states": int(table.shape[0]),
        **convergence(curve),
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
                "seed": cfg.seed, "scenario": cfg.scenario.name, "world": cfg.world.name,
                "forecaster": data["forecaster"], "controller": data["controller"],
                "wall_s": wall_s, "transitions": transitions,
                "final_eval": {k: summary[k] for k in summary if k.startswith("eval/final")},
            },
        })
        summary["train/model_path"] = str(model_path)
        write_text(output_dir / "learning_curve.csv", curve.to_csv(index=False))
        plot_learning_curve(curve, output_dir / "learning_curve.png")
        write_json(output_dir / "summary.json", summary)
    return summary


def convergence(curve: pd.DataFrame) -> dict[str, float]:
    """The learning curve in a few numbers: the greedy policy before and after
    training, and how much its reward still moved over the last third of the
    evaluations (a flat curve moves little)."""
    evals = curve[curve["kind"] == "eval"].groupby("number")[["reward_mean", "sla_compliance", "cost_usd_per_hour",
                                                              "latency_p99_s"]].mean()
    train = curve[curve["kind"] == "train"]["reward_mean"].to_numpy()
    tenth = max(1, len(train) // 10)
    tail = evals["reward_mean"].to_numpy()[-max(2, math.ceil(len(evals) / 3)):]
    first, final = evals.iloc[0], evals.iloc[-1]
    return {
        "eval/untrained_reward": float(first["reward_mean"]),
        "eval/untrained_sla": float(first["sla_compliance"]),
        "eval/untrained_cost_usd_per_hour": float(first["cost_usd_per_hour"]),
        "eval/final_reward": float(final["reward_mean"]),
        "eval/final_sla": float(final["sla_compliance"]),
        "eval/final_cost_usd_per_hour": float(final["cost_usd_per_hour"]),
        "eval/final_latency_p99_s": float(final["latency_p99_s"]),
        "eval/last_third_reward_range": float(tail.max() - tail.min()),
        "train/reward_first_tenth": float(train[:tenth].mean()),
        "train/reward_last_tenth": float(train[-tenth:].mean()),
    }


def plot_learning_curve(curve: pd.DataFrame, path: Path) -> None:
    """Reward, SLA compliance and cost per episode: training episodes (dots,
    rolling mean) and the greedy evaluations (line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    train = curve[curve["kind"] == "train"].copy()
    evals = curve[curve["kind"] == "eval"].groupby("number", as_index=False).mean(numeric_only=True)
    panels = [("reward_mean", "reward per tick"), ("sla_compliance", "SLA compliance"),
              ("cost_usd_per_hour", "cost (USD/h)")]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 8), sharex=True)
    window = max(1, len(train) // 20)
    for ax, (column, label) in zip(axes, panels):
        sns.scatterplot(x=train["number"] + 1, y=train[column], ax=ax, s=10, alpha=0.3, color="C0",
                        label="training episode")
        ax.plot(train["number"] + 1, train[column].rolling(window, min_periods=1).mean(), color="C0",
                label=f"training, rolling mean of {window}")
        sns.lineplot(x=evals["number"], y=evals[column], ax=ax, marker="o", color="C3", label="greedy evaluation")
        ax.set_ylabel(label)
        ax.get_legend().remove()
    axes[0].legend(*axes[0].get_legend_handles_labels(), loc="lower right", fontsize=8)
    axes[-1].set_xlabel("episodes trained")
    fig.suptitle("Q-learning autoscaler: learning curve")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
