"""A default run gives the results recorded in ``tests/data/golden_default_6h.json``.

The record was made before the package was reorganised into layers, so this
test shows that moves changed nothing: the summary (wall-clock figures are
in ``timing.json``, not in it) and a digest of the tick table must match
exactly. A change that
alters results on purpose regenerates the record,

    python tests/test_golden.py

and says in its commit why the numbers moved.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from elastic_des.app import run

GOLDEN = Path(__file__).parent / "data" / "golden_default_6h.json"
OVERRIDES = ("scenario.duration_s=21600", "output.report=false", "output.progress=false")


def record(cfg, output_dir: Path) -> dict:
    """What the golden file holds for a run of ``cfg``."""
    summary = run(cfg, output_dir)
    ticks = pd.read_parquet(output_dir / "ticks.parquet")
    digest = hashlib.sha256(ticks.to_csv(index=False, float_format="%.17g").encode()).hexdigest()
    # Through JSON, so floats and ints compare as the file stores them.
    return json.loads(json.dumps({"summary": summary, "ticks_sha256": digest, "columns": list(ticks.columns)},
                                 sort_keys=True, default=float))


def test_default_run_matches_the_golden_record(make_cfg, tmp_path):
    golden = json.loads(GOLDEN.read_text())
    got = record(make_cfg(*OVERRIDES), tmp_path)
    assert got["summary"] == golden["summary"]
    assert got["columns"] == golden["columns"]
    assert got["ticks_sha256"] == golden["ticks_sha256"]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import compose_config

    with tempfile.TemporaryDirectory() as folder:
        result = record(compose_config(*OVERRIDES), Path(folder))
    GOLDEN.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
