"""Named random streams derived from the run seed.

There is no global random state. Each component asks for the stream of its
own name, so adding a component never shifts another one's numbers, and the
two worlds of a dual-world run draw identical arrivals and request sizes
(common random numbers) because they ask for the same names.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator for component ``name`` of a run seeded with ``seed``."""
    if seed < 0:
        raise ValueError(f"seed = {seed}: must be >= 0")
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(key,))))
