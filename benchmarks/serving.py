"""Calibration and speed of the continuous-batching replica.

**Calibration** (default). For each world preset, a closed-loop load test of
one replica (:func:`elastic_des.engine.closed_loop.closed_loop`, as ``vllm
bench serve --max-concurrency C``) at concurrency 1, 2, 4 … ``max_num_seqs``
with ShareGPT-sized requests (215 prompt, 200 output tokens), printing
output throughput (tokens/s), median TPOT and mean TTFT, then the published
points of ``tests/data/published_serving.json`` beside the simulated ones,
and a plot of throughput and TPOT against concurrency
(``--plot``, default ``outputs/benchmarks/serving_sweep.png``).

**Speed** (``--speed``). The default scenario's day in the SLM world under
the threshold policy, simulated with the batching preset and with the slots
model planned from it (``tokens``: ``slots_per_replica`` = the planned batch,
decode at ``1 / t_step`` of that batch, the same prefill rate), in one
process, rounds interleaved; prints wall and CPU seconds (medians), their
ratio and the SimPy events scheduled per request of each.

Usage: ``python benchmarks/serving.py [--plot PATH] [--speed] [--repeat 3] [--duration-s 86400]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from omegaconf import OmegaConf

from elastic_des.config import ControllerConfig, ScenarioConfig, WorldConfig
from elastic_des.engine.closed_loop import closed_loop
from elastic_des.engine.service import serving_plan, step_s
from elastic_des.engine.simulation import simulate_world
from elastic_des.engine.workload import build_workload
from elastic_des.forecasters.simple import EWMAForecaster
from elastic_des.policies.threshold import ThresholdPolicy

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("slm", "llm")
PROMPT, OUTPUT = 215, 200


def _yaml(path: Path):
    data = OmegaConf.load(path)
    data.pop("defaults", None)  # the schema the Hydra defaults list names is merged in explicitly
    return data


def world(name: str):
    return OmegaConf.merge(OmegaConf.structured(WorldConfig), _yaml(ROOT / "conf" / "world" / f"{name}.yaml"))


def sweep(model) -> list:
    concurrency, results = 1, []
    while concurrency <= model.max_num_seqs:
        results.append(closed_loop(model, concurrency, max(8 * concurrency, 40), PROMPT, OUTPUT))
        concurrency *= 2
    return results


def calibration(plot_path: Path) -> None:
    published = json.loads((ROOT / "tests" / "data" / "published_serving.json").read_text())
    sweeps = {}
    for name in PRESETS:
        model = world(name).model
        print(f"\n{name}: {model.name} (t0 {model.step_base_s * 1e3:.2f} ms, t1 {model.step_per_seq_s * 1e6:.1f} us/seq, "
              f"prefill {model.prefill_tokens_per_s:.0f} tok/s, max_num_seqs {model.max_num_seqs})")
        print(f"{'concurrency':>11} {'tok/s':>9} {'TPOT ms':>8} {'TTFT ms':>8}")
        sweeps[name] = sweep(model)
        for r in sweeps[name]:
            print(f"{r.concurrency:>11} {r.output_tokens_per_s:>9.1f} {r.tpot_median_s * 1e3:>8.2f} {r.ttft_mean_s * 1e3:>8.1f}")
        print("published vs simulated:")
        for point in published[name]:
            r = closed_loop(model, point["concurrency"], point["requests"], point["prompt_tokens"], point["output_tokens"])
            thr = point["output_tokens_per_s"]
            thr_text = (f"{thr:.1f} vs {r.output_tokens_per_s:.1f} tok/s ({r.output_tokens_per_s / thr - 1:+.1%})"
                        if thr is not None else "throughput not published")
            print(f"  C={point['concurrency']}: {thr_text}; TPOT {point['tpot_s'] * 1e3:.2f} vs "
                  f"{r.tpot_median_s * 1e3:.2f} ms ({r.tpot_median_s / point['tpot_s'] - 1:+.1%})  [{point['source'][:60]}…]")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_thr, ax_tpot) = plt.subplots(1, 2, figsize=(10, 4))
    for name, results in sweeps.items():
        c = [r.concurrency for r in results]
        ax_thr.plot(c, [r.output_tokens_per_s for r in results], marker="o", label=world(name).model.name)
        ax_tpot.plot(c, [r.tpot_median_s * 1e3 for r in results], marker="o", label=world(name).model.name)
    for ax, label in ((ax_thr, "output tokens/s"), (ax_tpot, "median TPOT (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrency (closed loop)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"One replica, ShareGPT-sized requests ({PROMPT} in, {OUTPUT} out)")
    fig.tight_layout()
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(plot_path, dpi=120)
    print(f"\nplot: {plot_path}")


def slots_twin(batching_world, scenario):
    """The slots model planned from a batching world (see the module docs)."""
    plan = serving_plan(batching_world.model, scenario.workload, scenario.slo)
    twin = OmegaConf.merge(batching_world, {"model": {
        "service_model": "tokens", "slots_per_replica": plan.slots, "overhead_s": 0.0,
        "decode_tokens_per_s": 1.0 / step_s(batching_world.model, plan.slots),
    }})
    return twin


def speed(repeat: int, duration_s: float) -> None:
    scenario = OmegaConf.merge(OmegaConf.structured(ScenarioConfig), _yaml(ROOT / "scenarios" / "default.yaml"),
                               {"duration_s": duration_s})
    controller = OmegaConf.structured(ControllerConfig)
    workload = build_workload(scenario, 0)
    worlds = {"batching": world("slm")}
    worlds["slots"] = slots_twin(worlds["batching"], scenario)
    wall = {name: [] for name in worlds}
    cpu = {name: [] for name in worlds}
    events = {}
    for _ in range(repeat):
        for name, w in worlds.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            result = simulate_world(w, scenario, controller, ThresholdPolicy(), EWMAForecaster(), workload, 0)
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
            events[name] = (result.summary["run/events_per_request"], result.summary["sla/compliance"])
    print(f"\ndefault scenario, {duration_s:g} s, {len(workload)} requests, SLM world, threshold policy, {repeat} rounds")
    print(f"{'model':>9} {'wall s':>8} {'cpu s':>8} {'events/request':>15} {'SLA':>7}")
    for name in worlds:
        print(f"{name:>9} {statistics.median(wall[name]):>8.2f} {statistics.median(cpu[name]):>8.2f} "
              f"{events[name][0]:>15.2f} {events[name][1]:>7.4f}")
    print(f"batching / slots: wall {statistics.median(wall['batching']) / statistics.median(wall['slots']):.2f}x, "
          f"cpu {statistics.median(cpu['batching']) / statistics.median(cpu['slots']):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", type=Path, default=ROOT / "outputs" / "benchmarks" / "serving_sweep.png")
    parser.add_argument("--speed", action="store_true", help="time the default day, batching vs slots")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration-s", type=float, default=86_400.0)
    args = parser.parse_args()
    if args.speed:
        speed(args.repeat, args.duration_s)
    else:
        calibration(args.plot)


if __name__ == "__main__":
    main()
