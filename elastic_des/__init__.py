"""elastic_des: a discrete-event simulator of GPU inference fleets under autoscaling policies.

Public API (see ``docs/architecture.md``):

* ``elastic_des.run(cfg, output_dir=None) -> dict``: validate a composed
  config and run its task (the Hydra entry point calls it);
* ``elastic_des.engine.simulate_world(...)``: one world, no Hydra;
* ``elastic_des.agent.env.AutoscaleEnv``: the Gymnasium-style environment.

``run`` is loaded on first use, so ``import elastic_des.engine`` never pulls
in Hydra or the analysis layer.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "run":
        from elastic_des.app import run  # the app layer (Hydra) loads only when asked for

        return run
    raise AttributeError(f"module 'elastic_des' has no attribute {name!r}")
