"""Run folders written whole or not at all, and read only when complete.

A run folder (``outputs/runs/<name>``, or a job of a sweep) is built under a
temporary name beside its final place, ``.<name>.partial-<pid>-<ns>``, and
moved into place when everything is written: a reader never sees half of a
run, a killed run leaves only a hidden partial folder, and a rerun replaces
the old folder whole (the old one is first renamed aside, so the two are
never mixed).

The last file written is the completion marker ``complete.json``, holding
the SHA-256 of the folder's ``.hydra/config.yaml`` (the composed config). A
folder without it is not a result: a failed job of a sweep holds
``failed.json`` (the error) instead, and every reader (the sweep aggregate,
``task=explain``, the dashboard) skips or refuses such a folder, saying why
(:func:`incomplete_reason`). A rerun of a sweep skips the jobs whose folder
is complete with the same config hash (:func:`completed_summary`).

A folder that exists, is not empty and is not a run folder (no
``.hydra/``, no marker, no failure record) is never replaced: pointing the
output at a folder of other files is an error, not a deletion.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional


from elastic_des.atomic import write_json, write_text
from elastic_des.errors import ConfigError

MARKER = "complete.json"
FAILED = "failed.json"
CONFIG = Path(".hydra") / "config.yaml"
PARTIAL = ".partial-"


def config_sha256(config_yaml: str) -> str:
    return hashlib.sha256(config_yaml.encode("utf-8")).hexdigest()


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` is (or was meant to be) a run folder this module wrote."""
    return any((folder / name).exists() for name in (MARKER, FAILED, ".hydra"))


def _check_replaceable(final: Path) -> None:
    if final.is_dir() and any(final.iterdir()) and not is_run_folder(final):
        raise ConfigError(f"output folder {str(final)!r}: exists and holds files that are not a run's "
                          f"(no .hydra/, {MARKER} or {FAILED}); refusing to replace it: choose another folder")
    if final.exists() and not final.is_dir():
        raise ConfigError(f"output folder {str(final)!r}: is a file, not a folder")


def _remove_stale(final: Path) -> None:
    """Partial and set-aside folders of ``final`` left by a process that was killed."""
    if not final.parent.is_dir():
        return
    for path in final.parent.glob(f".{final.name}.*-*-*"):
        pid = path.name.rsplit("-", 2)[-2]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass  # alive, under another user


def _staging_folder(final: Path) -> Path:
    """A new, empty folder beside ``final``; a ConfigError if it cannot be made."""
    _remove_stale(final)
    staging = final.parent / f".{final.name}{PARTIAL}{os.getpid()}-{time.time_ns()}"
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(f"output folder {str(final)!r}: cannot be written ({exc.strerror or exc})") from None
    return staging


def _move_into_place(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging``; the old folder is renamed aside first, then removed."""
    _check_replaceable(final)  # again: something else may have written into it meanwhile
    old = None
    if final.exists():
        try:
            final.rmdir()  # empty (e.g. made by Hydra before the job): nothing to keep aside
        except OSError:
            old = final.parent / f".{final.name}.old-{os.getpid()}-{time.time_ns()}"
            os.rename(final, old)
    os.rename(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_writable(final: Path) -> None:
    """Refuse early (before running anything) an output folder that cannot be written or replaced."""
    final = Path(final)
    _check_replaceable(final)
    staging = _staging_folder(final)
    staging.rmdir()


def _write_record(staging: Path, config_yaml: str, hydra_files: Mapping[str, str]) -> None:
    write_text(staging / CONFIG, config_yaml)
    for name, text in hydra_files.items():
        write_text(staging / ".hydra" / name, text)


@contextmanager
def building(final: Path, config_yaml: str, hydra_files: Mapping[str, str] = {}) -> Iterator[Path]:
    """Yield a staging folder for the run whose composed config is ``config_yaml``
    (written to ``.hydra/config.yaml``, with ``hydra_files`` beside it); when the
    block ends without error, write the completion marker and move the folder
    into place over ``final``. On error the staging folder is removed and
    ``final`` is left as it was."""
    final = Path(final)
    _check_replaceable(final)
    staging = _staging_folder(final)
    try:
        _write_record(staging, config_yaml, hydra_files)
        yield staging
        files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        write_json(staging / MARKER, {"config_sha256": config_sha256(config_yaml), "files": files})
        _move_into_place(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def record_failure(final: Path, config_yaml: str, hydra_files: Mapping[str, str], exc: BaseException) -> None:
    """Replace ``final`` by a folder holding the config and ``failed.json`` (no marker)."""
    final = Path(final)
    _check_replaceable(final)
    staging = _staging_folder(final)
    try:
        _write_record(staging, config_yaml, hydra_files)
        trace = None if isinstance(exc, ConfigError) else "".join(traceback.format_exception(exc))
        write_json(staging / FAILED, {"error": str(exc), "type": type(exc).__name__, "traceback": trace})
        _move_into_place(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def failure(folder: Path) -> Optional[str]:
    """The error recorded in a failed run folder, if it is one."""
    path = Path(folder) / FAILED
    if not path.is_file():
        return None
    try:
        return str(json.loads(path.read_text()).get("error"))
    except (OSError, ValueError):
        return "unreadable failed.json"


def incomplete_reason(folder: Path) -> Optional[str]:
    """None if ``folder`` is a complete run folder, else why it is not one."""
    folder = Path(folder)
    error = failure(folder)
    if error is not None:
        return f"the run failed: {error}"
    marker = folder / MARKER
    if not marker.is_file():
        return f"it has no {MARKER}: the run did not finish (interrupted, or still running)"
    try:
        recorded = json.loads(marker.read_text())["config_sha256"]
        actual = config_sha256((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"its {MARKER} or {CONFIG} cannot be read ({exc})"
    if recorded != actual:
        return f"its {CONFIG} is not the config it was made with (the hash in {MARKER} differs)"
    return None


def require_complete(folder: Path, field: str) -> None:
    """A ConfigError naming ``field`` unless ``folder`` is a complete run folder."""
    reason = incomplete_reason(folder)
    if reason is not None:
        raise ConfigError(f"{field} = {str(folder)!r}: not a complete run folder: {reason}")


def completed_summary(folder: Path, config_yaml: str) -> Optional[dict]:
    """The summary of ``folder`` if it is complete and was made with ``config_yaml``."""
    folder = Path(folder)
    if incomplete_reason(folder) is not None:
        return None
    recorded = json.loads((folder / MARKER).read_text())["config_sha256"]
    if recorded != config_sha256(config_yaml):
        return None
    path = folder / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def run_dirname(scenario: str, policy: str, seed: Any, other_overrides: str = "") -> str:
    """A run folder's name: ``{scenario}__{policy}__{seed}``, plus ``__`` and the
    first 8 hex digits of the SHA-256 of the other overrides (Hydra's
    ``override_dirname``: sorted, ``key=value`` joined by commas, without
    scenario, policy, seed, output.progress and run.workers) when there are
    any. Runs that differ in anything but the progress bar and the number of
    processes (neither changes a result) land in different folders; the
    same command always lands in the same one. A multirun spells boolean
    values as Python does (``baseline.enabled=False``) where a single run keeps
    them as typed (``false``): they are lower-cased first, so a sweep job and
    the same single run share a folder name."""
    name = f"{scenario}__{policy}__{seed}"
    if other_overrides:
        overrides = re.sub(r"=(True|False)(?=,|$)", lambda m: "=" + m.group(1).lower(), str(other_overrides))
        name += "__" + hashlib.sha256(overrides.encode("utf-8")).hexdigest()[:8]
    return name


def check_creatable(folder: Path) -> None:
    """Refuse early a folder (e.g. a sweep's) that neither exists writable nor can be made."""
    folder = Path(folder).absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {str(folder)!r}: cannot be written ({existing} is not a writable folder)")
