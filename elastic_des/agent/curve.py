"""The learning curve of a training run: its summary numbers and its plot."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from elastic_des.atomic import atomic_path


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
