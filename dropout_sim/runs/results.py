"""Writing a run's results: atomic files, summary written last as the completion marker.

A run directory holds::

    config.yaml        the resolved configuration (what produced these numbers)
    monthly.csv        one row per month (status stocks, agency hours, queues, mean state)
    students.csv       one row per student (outcomes and process measures)
    trajectories.csv   monthly state of a sample of students (if output.trajectory_sample > 0)
    summary.json       headline outcomes + process measures + meta (version, seed, config hash)

Every file is written to a temporary name in the same folder and renamed into place
(``os.replace`` is atomic on POSIX), and ``summary.json`` is written last: a folder without
``summary.json`` is an unfinished run, whatever else it holds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .. import __version__
from ..model.metrics import STUDENT_COLUMNS, TRAJECTORY_COLUMNS, student_table, summary

SUMMARY_FILE = "summary.json"
RESULT_FILES = ("config.yaml", "monthly.csv", "students.csv", "trajectories.csv")
"""The files a run may write besides summary.json."""


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
        writer.writerow(header)
        cols = []
        for name in header:
            values = np.asarray(columns[name])
            if name.endswith("_month") and values.dtype.kind == "i":
                values = np.where(values < 0, "", values.astype(str))
            cols.append(values.tolist())
        writer.writerows(zip(*cols))

    atomic_write(path, write)


def config_hash(cfg_yaml: str) -> str:
    """Stable hash of a resolved config (used to recognise finished runs)."""
    return hashlib.sha256(cfg_yaml.encode("utf-8")).hexdigest()[:16]


def config_yaml(cfg: Any) -> str:
    """The YAML of a config (what ``config.yaml`` holds and :func:`config_hash` hashes).

    A validated :class:`~dropout_sim.schema.Config` is dumped from ``dataclasses.asdict`` with
    OmegaConf's own YAML dumper: the same text as ``OmegaConf.to_yaml(OmegaConf.structured(cfg))``
    (a test holds the two equal) in a tenth of the time, which the batch runner's resume check
    pays once per finished run.
    """
    from omegaconf import OmegaConf

    if hasattr(cfg, "_get_node"):
        return OmegaConf.to_yaml(cfg)
    import dataclasses

    import yaml

    return yaml.dump(dataclasses.asdict(cfg), default_flow_style=False, allow_unicode=True, sort_keys=False,
                     Dumper=_yaml_dumper())


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


def run_meta(cfg: Any, cfg_yaml: str) -> dict[str, Any]:
    return {
        "dropout_sim_version": __version__,
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
    if cfg.output.students_table:
        table = student_table(model)
        write_csv(out_dir / "students.csv", {c: table[c] for c in STUDENT_COLUMNS})
    if model.recorder.trajectories:
        data = np.concatenate(model.recorder.trajectories)
        cols = {name: data[:, i] for i, name in enumerate(TRAJECTORY_COLUMNS)}
        for name in ("month", "student_id", "status"):
            cols[name] = cols[name].astype(np.int64)
        write_csv(out_dir / "trajectories.csv", cols)
    result = summary(model)
    result["meta"] = {**run_meta(cfg, cfg_text), **(extra_meta or {})}
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
