"""A results store across sweeps: a partitioned Parquet dataset, queried with DuckDB.

``dropout-sim report SWEEP --store DIR`` appends the sweep's tidy tables; ``dropout-sim query
"<SQL>" [--store DIR]`` answers across every sweep appended. The schema is documented in
``docs/results-store.md``. Layout (Hive partitioning, one partition per sweep)::

    DIR/runs/sweep_id=<id>/part-0.parquet      one row per run (the report's runs table)
    DIR/monthly/sweep_id=<id>/part-0.parquet   one row per run and month
    DIR/summary/sweep_id=<id>/part-0.parquet   one row per scenario (the report's summary.csv)
    DIR/configs/sweep_id=<id>/part-0.parquet   one row per finished run: its resolved config.yaml

``<id>`` is the sweep folder's name and a short hash of its absolute path, so reporting the
same sweep again replaces its partition (no duplicates) and two sweeps of the same name stay
apart. Needs the ``store`` extra (pyarrow, duckdb).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

TABLES = ("runs", "monthly", "summary", "configs")
PARTITION = "sweep_id"
DEFAULT_STORE = "results_store"
STORE_ENV = "DROPOUT_SIM_STORE"


def sweep_id(sweep_dir: str | Path) -> str:
    """``<folder name>-<8 hex of the absolute path>``: stable for a folder, distinct across folders."""
    path = Path(sweep_dir).resolve()
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", path.name) or "sweep"
    return f"{name}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


def config_table(sweep: Any) -> pd.DataFrame:
    """One row per finished run of ``sweep``: ``run`` and every key of its ``config.yaml``
    (lists stay lists, e.g. ``regime.colocated``)."""
    import yaml

    from .report import _flatten

    rows = []
    for run in sweep.ok["run"]:
        path = Path(sweep.sweep_dir) / run / "config.yaml"
        try:
            cfg = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        rows.append({"run": run, **_flatten(cfg, as_table_cell=False)})
    return pd.DataFrame(rows)


def _arrow_ready(df: pd.DataFrame) -> pd.DataFrame:
    """Columns Parquet can hold: object columns of numbers become float, mixed ones text."""
    df = df.copy()
    for col in df.columns:
        if df[col].dtype != object:
            continue
        values = df[col].dropna()
        if values.map(lambda v: isinstance(v, list)).all() and len(values):
            continue
        if len(values) and values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all():
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        elif len(values) and values.map(lambda v: isinstance(v, bool)).all():
            df[col] = df[col].astype("boolean")
        else:
            df[col] = df[col].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                                  else str(v)).astype("string")
    return df


def append(store: str | Path, sweep: Any, summary: pd.DataFrame) -> dict[str, Path]:
    """Write ``sweep``'s tables into ``store`` as its partition (replacing an earlier one)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = Path(store)
    sid = sweep_id(sweep.sweep_dir)
    stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    tables = {"runs": sweep.runs, "monthly": sweep.monthly, "summary": summary, "configs": config_table(sweep)}
    written: dict[str, Path] = {}
    for name, df in tables.items():
        df = _arrow_ready(df)
        df.insert(0, "sweep_dir", str(Path(sweep.sweep_dir).resolve()))
        df.insert(1, "reported_at", stamp)
        part = store / name / f"{PARTITION}={sid}"
        part.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{PARTITION}={sid}.", dir=part.parent))
        try:
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp / "part-0.parquet")
            old = None
            if part.exists():
                old = part.with_name(f".old-{part.name}-{os.getpid()}")
                part.rename(old)
            tmp.rename(part)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        written[name] = part
    return written


def connect(store: str | Path) -> Any:
    """An in-memory DuckDB connection with one view per table of ``store`` (those that exist)."""
    import duckdb

    store = Path(store)
    con = duckdb.connect()
    for name in TABLES:
        if any((store / name).glob(f"{PARTITION}=*/*.parquet")):
            pattern = str(store / name / f"{PARTITION}=*" / "*.parquet").replace("'", "''")
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{pattern}', "
                        "hive_partitioning = true, union_by_name = true)")
    return con


def query(store: str | Path, sql: str) -> pd.DataFrame:
    """Run ``sql`` against the store's views (runs, monthly, summary, configs)."""
    store = Path(store)
    if not any(any((store / t).glob(f"{PARTITION}=*/*.parquet")) for t in TABLES):
        raise FileNotFoundError(f"{store} holds no results; add a sweep with: dropout-sim report SWEEP --store {store}")
    return connect(store).execute(sql).fetchdf()


def main(argv: list[str] | None = None) -> int:
    """``dropout-sim query "<SQL>"``: exit 0, or 2 with one line on bad SQL or a missing store."""
    parser = argparse.ArgumentParser(
        prog="dropout-sim query",
        description="SQL (DuckDB) across every sweep appended to the results store "
                    "(views: runs, monthly, summary, configs; see docs/results-store.md).")
    parser.add_argument("sql", help='e.g. "SELECT sweep_id, scenario, avg(completion_5y) FROM runs GROUP BY ALL"')
    parser.add_argument("--store", type=Path, default=Path(os.environ.get(STORE_ENV, DEFAULT_STORE)),
                        help=f"the store folder (default ${STORE_ENV} or ./{DEFAULT_STORE})")
    parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    parser.add_argument("--max-rows", type=int, default=100, help="rows printed as a table (default 100)")
    args = parser.parse_args(argv)
    try:
        import duckdb
        import pyarrow  # noqa: F401
    except ImportError:
        print("dropout-sim query: error: needs the store extra: pip install 'dropout_sim[store]'", file=sys.stderr)
        return 2
    try:
        df = query(args.store, args.sql)
    except FileNotFoundError as exc:
        print(f"dropout-sim query: error: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"dropout-sim query: error: {first}", file=sys.stderr)
        return 2
    if args.csv:
        sys.stdout.write(df.to_csv(index=False))
    else:
        with pd.option_context("display.max_columns", 50, "display.width", 200):
            print(df.to_string(index=False, max_rows=args.max_rows))
        print(f"({len(df)} rows)")
    return 0
