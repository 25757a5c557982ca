"""The simulation engine: everything SimPy, and nothing above it.

The flow of one world, module by module::

    workload (distributions, traces) ──► dispatcher (FIFO queue) ──► replicas (pool)
          ▲                                    ▲                         ▲
    history (warm-up)              controller: observe ──► Forecaster ──► Policy ──► target
                                               │
                                         metrics ──► simulation.WorldResult

``policy`` and ``forecast`` hold the interfaces that the policies,
forecasters and the agent implement; the engine never imports an
implementation, torch, plotting, Streamlit or Hydra.
"""

from elastic_des.engine.simulation import WorldResult, simulate_world

__all__ = ["WorldResult", "simulate_world"]
