"""``python run.py --help``: the usage text, without loading the application.

Hydra's own ``--help`` composes the config and then lists every config group
by copying its whole config repository once per group (about 80 copies of
every registered schema), which with pandas, scipy and Hydra loaded first
took about 4 s. This text lists the same groups straight from the
``conf/`` folder and points to ``--cfg job`` for the composed config, so
the entry point answers at once (``run.py`` calls it before importing
:mod:`elastic_des.app`). ``--hydra-help`` still shows Hydra's help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
HELP_FLAGS = ("-h", "--help")


def wants_help(argv: Sequence[str]) -> bool:
    """True if the command line asks for the usage text."""
    return any(arg in HELP_FLAGS for arg in argv)


def config_groups(conf_dir: Path = CONF_DIR) -> dict[str, list[str]]:
    """Each config group under ``conf_dir`` and its options (the YAML files in it)."""
    groups = {}
    # conf/hydra holds Hydra's own groups (logging, launchers): not options of a run.
    for folder in sorted(p for p in conf_dir.iterdir() if p.is_dir() and p.name != "hydra"):
        groups[folder.name] = sorted(f.stem for f in folder.glob("*.yaml"))
    return groups


def usage(conf_dir: Path = CONF_DIR) -> str:
    groups = "\n".join(f"{name}: {', '.join(options)}" for name, options in config_groups(conf_dir).items())
    return f"""elastic_des: simulate a GPU inference fleet under an autoscaling policy (see README.md).

usage: python run.py [group=option ...] [key=value ...]
       python run.py -m [sweep overrides]      a multirun (sweep)

== Configuration groups ==
Compose your configuration from those groups (group=option)

{groups}

== Config ==
Override anything in the config (foo.bar=value); the schemas, every field
documented with its unit, are in elastic_des/config.py.
  python run.py --cfg job [overrides]   print the composed config
  python run.py --hydra-help            Hydra's own options
"""
