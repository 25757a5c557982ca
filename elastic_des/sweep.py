"""``python -m elastic_des.sweep DIR``: (re)aggregate a sweep folder.

Writes ``sweep_summary.csv``, ``sweep_aggregate.csv`` and the figures into
``DIR`` over its complete jobs, exactly as the multirun callback does
(:func:`elastic_des.analysis.sweep.summarize_sweep`), e.g. after an
interrupted sweep or after adding jobs. Exits 1 listing the jobs that
failed or did not finish, 2 if ``DIR`` holds no complete job.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from elastic_des.analysis.sweep import summarize_sweep, unfinished_message


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m elastic_des.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder (what `python run.py -m ...` writes)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if not args.sweep_dir.is_dir():
        print(f"error: {args.sweep_dir}: not a folder", file=sys.stderr)
        return 2
    paths = summarize_sweep(args.sweep_dir)
    for path in paths.values():
        print(f"wrote {path}")
    message = unfinished_message(args.sweep_dir)
    if message:
        print(message, file=sys.stderr)
    if not paths:
        print(f"error: {args.sweep_dir}: no complete job to aggregate", file=sys.stderr)
        return 2
    return 1 if message else 0


if __name__ == "__main__":
    sys.exit(main())
