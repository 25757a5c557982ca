"""``requests.parquet`` written as the run goes, in row groups.

A world hands over its request rows in chunks as requests retire
(``simulate_world(record_requests=writer)``, arrays of
:data:`~elastic_des.engine.metrics.ROW_COLUMNS`). :class:`RowGroupWriter`
buffers them and appends a row group of about :data:`ROW_GROUP_ROWS` rows
at a time to the world's own part file, so a month-long run never holds its
request table in memory. :func:`join_parts` then copies the worlds' parts,
row group by row group, into ``requests.parquet`` (candidate first, then
baseline: the rows, order and types of the table written whole). A world run
in a worker process writes its part there. The files go into the run's
staging folder, so the run folder still appears complete or not at all
(:mod:`elastic_des.runfolder`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from elastic_des.engine.metrics import rows_table

ROW_GROUP_ROWS = 262_144


class RowGroupWriter:
    """Appends one world's request rows, labelled ``role`` and ``world``, to ``path`` in row groups."""

    def __init__(self, path: Path, role: str, world: str, row_group_rows: Optional[int] = None):
        row_group_rows = ROW_GROUP_ROWS if row_group_rows is None else row_group_rows
        if row_group_rows < 1:
            raise ValueError(f"row_group_rows = {row_group_rows}: must be >= 1")
        self.path, self.role, self.world = Path(path), role, world
        self.row_group_rows = row_group_rows
        self._pending: list[dict[str, np.ndarray]] = []
        self._rows = 0
        self._writer: Optional[pq.ParquetWriter] = None

    def __call__(self, rows: dict[str, np.ndarray]) -> None:
        """Take the next rows of the world's request table."""
        self._pending.append(rows)
        self._rows += len(rows["arrival_s"])
        if self._rows >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._writer is not None and not self._rows:
            return
        frame = rows_table(self._pending).assign(role=self.role, world=self.world)
        self._pending, self._rows = [], 0
        if self._writer is None:
            schema = pa.Schema.from_pandas(frame, preserve_index=False)
            self._writer = pq.ParquetWriter(self.path, schema)
        self._writer.write_table(pa.Table.from_pandas(frame, schema=self._writer.schema, preserve_index=False),
                                 row_group_size=len(frame))

    def close(self) -> None:
        """Write what is left (an empty table if the world had no requests)."""
        self._flush()
        if self._writer is not None:
            self._writer.close()


def join_parts(parts: Sequence[Path], path: Path) -> None:
    """Copy the row groups of ``parts`` (same schema), in order, into ``path``; remove the parts."""
    writer = None
    try:
        for part in parts:
            source = pq.ParquetFile(part)
            if writer is None:
                writer = pq.ParquetWriter(path, source.schema_arrow)
            for group in range(source.num_row_groups):
                writer.write_table(source.read_row_group(group))
    finally:
        if writer is not None:
            writer.close()
    for part in parts:
        Path(part).unlink()
