"""Writing a run's results: atomic files, summary written last as the completion marker.

A run directory holds::

    config.yaml        the resolved configuration (what produced these numbers)
    monthly.csv        one row per month (status stocks, agency hours, queues, mean state)
    students.csv       one row per student (outcomes and process measures)
    trajectories.csv   monthly state of a sample of students (if output.trajectory_sample > 0)
    summary.json       headline outcomes + process measures + meta (version, seed, config hash,
                       code fingerprint, provenance, size of every file written before it)

Every file is written to a temporary name in the same folder and renamed into place
(``os.replace`` is atomic on POSIX), and ``summary.json`` is written last: a folder without
``summary.json`` is an unfinished run, whatever else it holds.

**Which results are reused.** :func:`finished_run` is the one test of "this folder already
holds the result of this config, computed by this code": a ``summary.json`` that is whole
(:func:`summary_problem`), the same config hash, and the same *code fingerprint*
(:func:`code_fingerprint`: a hash of the package's source files and shipped configs). The
sweep job and the batch runner call it; nothing else decides to skip a run.

**Locking.** :func:`run_lock` holds an exclusive ``flock`` on ``<run dir>/.lock`` while a
run is checked, cleared, computed and written, so two processes never work in one folder
at once: the second waits, then finds the run finished and skips it.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from .. import __version__
from ..model.metrics import STUDENT_COLUMNS, TRAJECTORY_COLUMNS, Focal, student_table, summary

SUMMARY_FILE = "summary.json"
RESULT_FILES = ("config.yaml", "monthly.csv", "students.csv", "trajectories.csv")
"""The files a run may write besides summary.json."""
LOCK_FILE = ".lock"
ENV_COMMAND = "DROPOUT_SIM_COMMAND"
"""The command line that started a run or sweep (set by the CLI, inherited by every worker)."""
REQUIRED_SUMMARY_KEYS = ("completion_5y", "students", "meta")


def _file_mode() -> int:
    """Mode a plain open() would give a new file under the current umask (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, write: Any, mode: str = "w", durable: bool = True) -> None:
    """Write via ``write(fileobj)`` to a temp file beside ``path`` and rename it into place
    (flushed to disk first unless ``durable=False``, for files nothing depends on)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, newline="" if "b" not in mode else None) as fh:
            write(fh)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())  # readable by the group/others as any result file would be
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    atomic_write(path, lambda fh: fh.write(text), durable=durable)


def write_csv(path: Path, columns: Mapping[str, Iterable] | None = None,
              rows: list[dict] | None = None) -> None:
    """Write a CSV atomically from columns (equal-length arrays) or from row dicts.

    Month columns use -1 for "never" in memory and are written as empty cells.
    """
    def write(fh: io.TextIOBase) -> None:
        writer = csv.writer(fh)
        if rows is not None:
            header = list(rows[0]) if rows else []
            writer.writerow(header)
            writer.writerows([row[h] for h in header] for row in rows)
            return
        header = list(columns)
        arrays = {name: np.asarray(columns[name]) for name in header}
        text = _csv_text(header, arrays)
        if text is not None:
            fh.write(text)
            return
        writer.writerow(header)
        cols = []
        for name in header:
            values = arrays[name]
            if _blank_negative(name, values):
                values = np.where(values < 0, "", values.astype(str))
            cols.append(values.tolist())
        writer.writerows(zip(*cols))

    atomic_write(path, write)


def _blank_negative(name: str, values: np.ndarray) -> bool:
    """A month column (signed integers, -1 = never): negative values are written as empty cells."""
    return name.endswith("_month") and values.dtype.kind == "i"


_CSV_QUOTED = (csv.excel.delimiter, csv.excel.quotechar, "\r", "\n")
"""characters that make ``csv.writer`` quote a cell"""


def _csv_text(header: list[str], arrays: Mapping[str, np.ndarray]) -> str | None:
    """The CSV ``csv.writer`` writes for these columns, built a column at a time (a third of its
    time for a run's students.csv); None when a cell would need what only ``csv.writer`` does
    (quoting, a lone empty cell, a type other than integers, floats and text)."""
    if len(header) < 2 or _needs_quotes(header):
        return None
    cells = []
    for name in header:
        column = _csv_cells(arrays[name], _blank_negative(name, arrays[name]))
        if column is None:
            return None
        cells.append(column)
    end = csv.excel.lineterminator
    lines = [csv.excel.delimiter.join(header)]
    lines += map(csv.excel.delimiter.join, zip(*cells))
    return end.join(lines) + end


def _needs_quotes(texts: list[str]) -> bool:
    joined = "".join(texts)
    return any(ch in joined for ch in _CSV_QUOTED)


def _csv_cells(values: np.ndarray, blank_negative: bool) -> list[str] | None:
    """One column's cells as ``csv.writer`` turns them into text (``str`` of each value)."""
    kind = values.dtype.kind
    if values.ndim != 1:
        return None
    if kind == "f":
        return list(map(str, values.tolist()))
    if kind == "U":
        texts = values.tolist()
        return None if _needs_quotes(texts) else texts
    if kind not in "iu":
        return None
    if not values.size:
        return []
    lo, hi = int(values.min()), int(values.max())
    if hi - lo > 2 * values.size + 256 or min(lo, -hi) < -2**62:
        numbers = values.tolist()
        return ["" if v < 0 else str(v) for v in numbers] if blank_negative else list(map(str, numbers))
    # few distinct values (counts, months, codes): each written once, then looked up
    table = np.array([str(v) for v in range(lo, hi + 1)], dtype=object)
    if blank_negative and lo < 0:
        table[:min(-lo, table.size)] = ""
    return table[values.astype(np.int64) - lo].tolist()


def config_hash(cfg_yaml: str) -> str:
    """Stable hash of a resolved config (used to recognise finished runs)."""
    return hashlib.sha256(cfg_yaml.encode("utf-8")).hexdigest()[:16]


def config_yaml(cfg: Any) -> str:
    """The YAML of a config (what ``config.yaml`` holds and :func:`config_hash` hashes).

    A validated :class:`~dropout_sim.schema.Config` is dumped from ``dataclasses.asdict`` with
    OmegaConf's own YAML dumper: the same text as ``OmegaConf.to_yaml(OmegaConf.structured(cfg))``
    (a test holds the two equal) in a tenth of the time, which the batch runner's resume check
    pays once per finished run.

    The runs of a sweep differ in a few values, so the text is put together from each top-level
    section's YAML (a block mapping is its keys' blocks one after another), kept per section
    value: a section's ``repr`` names its value exactly, since the dumper takes nothing but plain
    dicts, lists, strings, numbers, booleans and None.
    """
    from omegaconf import OmegaConf

    if hasattr(cfg, "_get_node"):
        return OmegaConf.to_yaml(cfg)
    import dataclasses

    data = dataclasses.asdict(cfg)
    if not data:
        return _dump_yaml(data)
    parts = []
    for key, value in data.items():
        seen = (key, repr(value))
        text = _SECTION_YAML.get(seen)
        if text is None:
            text = _dump_yaml({key: value})
            if len(_SECTION_YAML) >= 4096:
                _SECTION_YAML.clear()
            _SECTION_YAML[seen] = text
        parts.append(text)
    return "".join(parts)


_SECTION_YAML: dict[tuple[str, str], str] = {}
"""(top-level key, repr of its value) -> that section's YAML (see :func:`config_yaml`)"""


def _dump_yaml(data: Any) -> str:
    import yaml

    return yaml.dump(data, default_flow_style=False, allow_unicode=True, sort_keys=False, Dumper=_yaml_dumper())


_DUMPER = None


def _yaml_dumper() -> Any:
    """OmegaConf's YAML dumper on libyaml when available (its string quoting, C speed)."""
    global _DUMPER
    if _DUMPER is None:
        import yaml
        from omegaconf._utils import get_omega_conf_dumper

        omega = get_omega_conf_dumper()
        if not hasattr(yaml, "CSafeDumper"):
            _DUMPER = omega
        else:
            class Dumper(yaml.CSafeDumper):  # type: ignore[misc, valid-type]
                pass

            Dumper.add_representer(str, omega.yaml_representers[str])
            _DUMPER = Dumper
    return _DUMPER


def config_yaml_omegaconf(cfg: Any) -> str:
    """The reference :func:`config_yaml` (through OmegaConf's structured config); for tests."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


# --------------------------------------------------------------------------------------
# what produced a run: code fingerprint and provenance
# --------------------------------------------------------------------------------------
def _source_files() -> list[tuple[str, Path]]:
    """(name, path) of every file whose content can decide a run's numbers, in a fixed order:
    the package's ``.py`` files and the shipped ``.yaml`` configs.

    ``analysis/`` and ``app/`` are left out: they sit above ``runs/`` and ``model/`` and a run
    never imports them (the layers' rule), so a change to the report or the CLI does not
    invalidate finished runs.
    """
    import importlib.util

    package = Path(__file__).resolve().parent.parent
    above = {"analysis", "app"}
    found = [(f"dropout_sim/{p.relative_to(package).as_posix()}", p) for p in package.rglob("*.py")
             if "__pycache__" not in p.parts and p.relative_to(package).parts[0] not in above]
    spec = importlib.util.find_spec("dropout_sim.configs")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        root = Path(loc).resolve()
        if root.is_dir() and package not in root.parents:  # an editable install maps configs/ here
            found += [(f"configs/{p.relative_to(root).as_posix()}", p) for p in root.rglob("*.yaml")]
    if not any(name.startswith("configs/") for name, _ in found):
        root = package / "configs"
        found += [(f"configs/{p.relative_to(root).as_posix()}", p) for p in root.rglob("*.yaml")]
    return sorted(set(found))


def source_hash() -> str:
    """sha256 (16 hex digits) over the names and contents of :func:`_source_files`."""
    h = hashlib.sha256()
    for name, path in _source_files():
        h.update(name.encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> dict[str, Any]:
    """What code produces a run (computed once per process).

    ``fingerprint``: the hash of the package's source and configs (:func:`source_hash`); two
    runs with the same config hash and fingerprint give identical numbers. ``git_commit`` and
    ``git_dirty`` (uncommitted changes in the work tree) when the package runs from a git
    checkout, else None: provenance, not part of the comparison (a commit that only touches
    docs or tests does not invalidate results).
    """
    package = Path(__file__).resolve().parent.parent
    commit = dirty = None
    installed = "site-packages" in package.parts or "dist-packages" in package.parts
    top = None if installed else _git(["rev-parse", "--show-toplevel"], package)  # a wheel has no commit
    if top is not None and (Path(top) / "pyproject.toml").is_file():
        commit = _git(["rev-parse", "HEAD"], package)
        status = _git(["status", "--porcelain", "--untracked-files=no"], package)
        dirty = None if status is None else bool(status)
    return {"fingerprint": source_hash(), "git_commit": commit, "git_dirty": dirty}


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _library_versions() -> dict[str, Any]:
    return {"python": platform.python_version(), "numpy": _dist_version("numpy"), "mesa": _dist_version("mesa"),
            "hydra": _dist_version("hydra-core"), "omegaconf": _dist_version("omegaconf"),
            "platform": platform.platform(), "machine": platform.machine()}


def provenance() -> dict[str, Any]:
    """Python, numpy, mesa and hydra versions, the platform and the command line of this run."""
    command = os.environ.get(ENV_COMMAND) or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return {**_library_versions(), "command": command}


def run_meta(cfg: Any, cfg_yaml: str) -> dict[str, Any]:
    code = code_fingerprint()
    return {
        "dropout_sim_version": __version__,
        "code_fingerprint": code["fingerprint"],
        "git_commit": code["git_commit"],
        "git_dirty": code["git_dirty"],
        "provenance": provenance(),
        "seed": cfg.seed,
        "replicate": cfg.replicate,
        "regime": cfg.regime.name,
        "colocated": list(cfg.regime.colocated),
        "cohort_size": cfg.cohort.size,
        "horizon_months": cfg.horizon_months,
        "config_hash": config_hash(cfg_yaml),
    }


def write_run(model: Any, out_dir: Path, extra_meta: dict | None = None, cfg_text: str | None = None) -> dict[str, Any]:
    """Write all results of a finished model run into ``out_dir``; return the summary dict.

    ``cfg_text``: :func:`config_yaml` of ``model.cfg`` when the caller has it already."""
    out_dir = Path(out_dir)
    cfg = model.cfg
    cfg_text = cfg_text if cfg_text is not None else config_yaml(cfg)
    atomic_write_text(out_dir / "config.yaml", cfg_text)
    write_csv(out_dir / "monthly.csv", rows=model.recorder.rows)
    files = {"monthly.csv": {"rows": len(model.recorder.rows), "bytes": (out_dir / "monthly.csv").stat().st_size}}
    focal = Focal(model)  # the focal students' arrays, for the table and the summary
    if cfg.output.students_table:
        table = student_table(model, focal)
        write_csv(out_dir / "students.csv", {c: table[c] for c in STUDENT_COLUMNS})
    if model.recorder.trajectories:
        data = np.concatenate(model.recorder.trajectories)
        cols = {name: data[:, i] for i, name in enumerate(TRAJECTORY_COLUMNS)}
        for name in ("month", "student_id", "status"):
            cols[name] = cols[name].astype(np.int64)
        write_csv(out_dir / "trajectories.csv", cols)
    result = summary(model, focal)
    result["meta"] = {**run_meta(cfg, cfg_text), "files": files, **(extra_meta or {})}
    atomic_write_text(out_dir / SUMMARY_FILE, json.dumps(result, indent=2, default=_json_default))
    return result


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path: Path) -> Any:
    """The parsed JSON file, or None if it is missing or unreadable (an unfinished write)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def is_complete(run_dir: Path) -> bool:
    """A run directory is complete when its summary.json exists and parses."""
    return read_json(Path(run_dir) / SUMMARY_FILE) is not None


def _bad_number(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def summary_problem(summary: Any, run_dir: Path | None = None) -> str | None:
    """Why a parsed ``summary.json`` (and, given ``run_dir``, its ``monthly.csv``) cannot be
    trusted, or None when it is whole.

    Damaged: not a mapping; a required key missing; ``completion_5y`` NaN or infinite (a
    ``null`` with a ``completion_5y_note`` is a valid "not observed"); any NaN among the
    top-level numbers; ``monthly.csv`` missing or not the size the summary recorded (a
    truncated file that still parses).
    """
    if not isinstance(summary, dict):
        return "summary.json is not a JSON object"
    missing = [k for k in REQUIRED_SUMMARY_KEYS if k not in summary]
    if missing:
        return f"summary.json lacks {', '.join(missing)}"
    share = summary["completion_5y"]
    if share is None:
        if not summary.get("completion_5y_note"):
            return "summary.json has completion_5y null without a completion_5y_note"
    elif isinstance(share, bool) or not isinstance(share, (int, float)) or _bad_number(share):
        return f"summary.json has completion_5y = {share!r}"
    bad = [k for k, v in summary.items() if _bad_number(v)]
    if bad:
        return f"summary.json has NaN/inf in {', '.join(bad[:3])}"
    if run_dir is not None:
        expected = ((summary.get("meta") or {}).get("files") or {}).get("monthly.csv")
        path = Path(run_dir) / "monthly.csv"
        try:
            size = path.stat().st_size
        except OSError:
            return "monthly.csv is missing"
        if isinstance(expected, dict) and expected.get("bytes") is not None and size != expected["bytes"]:
            return f"monthly.csv has {size} bytes, the run wrote {expected['bytes']} (truncated or changed)"
    return None


def finished_run(out_dir: str | Path, cfg_hash: str, fingerprint: str | None = None) -> bool:
    """True if ``out_dir`` holds a whole, finished run of the config with hash ``cfg_hash``
    computed by the code with fingerprint ``fingerprint`` (default: the running code's).

    The one rule for reusing a result (sweep resume, batch runner, SLURM submission): a
    ``summary.json`` that parses and is whole (:func:`summary_problem`, which also checks
    ``monthly.csv``), the same config hash and the same code fingerprint. A run written by
    older code (no fingerprint) is never reused.
    """
    if fingerprint is None:
        fingerprint = code_fingerprint()["fingerprint"]
    out_dir = Path(out_dir)
    summary = read_json(out_dir / SUMMARY_FILE)
    if summary_problem(summary, out_dir) is not None:
        return False
    meta = summary["meta"] if isinstance(summary["meta"], dict) else {}
    return meta.get("config_hash") == cfg_hash and meta.get("code_fingerprint") == fingerprint


@contextlib.contextmanager
def run_lock(run_dir: str | Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``run_dir`` (``flock`` on ``<run_dir>/.lock``) for the block.

    Yields True when held. With ``wait=False`` yields False at once if another process holds
    it (the caller should skip the run). The lock goes with the process, so a killed run
    never leaves a stale one; the ``.lock`` file itself stays (removing it would race).
    Where ``flock`` is unavailable (not POSIX) the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # an unwritable folder: nothing can be written there to protect
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock
