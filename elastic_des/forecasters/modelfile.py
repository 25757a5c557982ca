"""The on-disk format of a trained neural forecaster.

A model is two files side by side: ``<path>`` holds the network's weights as
a ``torch.save``-d ``state_dict`` (loaded back with ``weights_only=True``,
so a model file can never run code), and ``<path>.json`` the metadata
needed to rebuild the network and use it: the kind (``lstm``, ``tcn``), the
architecture, the window and horizon, the normalization scale, the tick
length it was trained at, and the format and torch versions.

Every way a model can be unusable (a missing or truncated file, bad JSON, a
missing key, weights whose shapes do not match the metadata) is a
:class:`~elastic_des.errors.ConfigError` that names the file and the fault.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from elastic_des.atomic import atomic_path, write_json
from elastic_des.errors import ConfigError

FORMAT_VERSION = 1
FIELD = "forecaster.model_path"
REQUIRED_KEYS = (
    "format_version", "kind", "architecture", "window_ticks", "horizon_ticks", "scale_rps", "tick_s",
    "torch_version",
)


def metadata_path(path: Path) -> Path:
    """Where the metadata of the model at ``path`` lives: ``<path>.json``."""
    return Path(f"{path}.json")


def save_model(path: Path, net: torch.nn.Module, metadata: dict) -> None:
    """Write ``net``'s weights to ``path`` and ``metadata`` next to it, atomically."""
    path = Path(path)
    meta = {**metadata, "format_version": FORMAT_VERSION, "torch_version": torch.__version__}
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ValueError(f"model metadata lacks {missing}")
    with atomic_path(path) as tmp:
        torch.save(net.state_dict(), tmp)
    write_json(metadata_path(path), meta)


def _fail(path: Path, problem: str) -> ConfigError:
    return ConfigError(f"{FIELD} = {str(path)!r}: {problem}")


def read_metadata(path: Path, kind: str) -> dict:
    """The metadata of the ``kind`` model at ``path``, checked for completeness."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise _fail(path, "no such file")
    meta_path = metadata_path(path)
    if not meta_path.is_file():
        raise _fail(path, f"its metadata file {meta_path} is missing (save() writes both)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"metadata {meta_path} is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise _fail(path, f"metadata {meta_path} must be a JSON object, found {type(meta).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise _fail(path, f"metadata {meta_path} lacks key(s) {missing}")
    if meta["format_version"] != FORMAT_VERSION:
        raise _fail(path, f"metadata format_version = {meta['format_version']!r}; this version reads {FORMAT_VERSION}")
    if meta["kind"] != kind:
        raise _fail(path, f"holds a {meta['kind']!r} model, not a {kind!r} one")
    scale = meta["scale_rps"]
    if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise _fail(path, f"metadata scale_rps = {scale!r}: must be a number > 0")
    tick_s = meta["tick_s"]
    if tick_s is not None and (not isinstance(tick_s, (int, float)) or tick_s <= 0):
        raise _fail(path, f"metadata tick_s = {tick_s!r}: must be a number > 0 or null")
    if not isinstance(meta["architecture"], dict):
        raise _fail(path, f"metadata architecture = {meta['architecture']!r}: must be an object")
    return meta


def load_weights(path: Path, net: torch.nn.Module) -> None:
    """Load the ``state_dict`` at ``path`` into ``net``, which the metadata built."""
    path = Path(path).expanduser()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to unpickle means an unusable file
        raise _fail(path, f"not a readable torch state_dict (truncated or corrupt?): {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _fail(path, f"holds a {type(state).__name__}, not a state_dict of tensors")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())  # torch lists the mismatches on several lines
        raise _fail(path, f"weights do not fit the architecture in its metadata: {detail}") from exc
