"""A non-editable install carries its configs: `dropout-sim` works from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_configs_and_runs_from_elsewhere(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, text=True, timeout=600)
    (wheel,) = wheels.glob("dropout_sim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("dropout_sim/configs/config.yaml", "dropout_sim/configs/regime/colocated.yaml",
                   "hydra_plugins/dropout_sim_launcher/launcher.py",
                   "dropout_sim/configs/agencies/default.yaml", "dropout_sim/configs/targets/default.yaml",
                   "dropout_sim/configs/plausible_ranges.yaml", "dropout_sim/configs/sensitivity/default.yaml",
                   "dropout_sim/configs/posterior/section9_abc/particles.csv",
                   "dropout_sim/configs/posterior/section9_abc.yaml"):
        assert needed in names, needed

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run([sys.executable, "-c", "import dropout_sim; print(dropout_sim.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(site)), "the installed copy, not the source tree, is tested"
    run_dir = elsewhere / "run"
    proc = subprocess.run([sys.executable, "-m", "dropout_sim", "regime=nav_pilot", "cohort.size=300",
                           f"hydra.run.dir={run_dir}"], cwd=elsewhere, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "summary.json").is_file()
    # the shipped posterior is found by name in the installed package
    post_dir = elsewhere / "post"
    proc = subprocess.run([sys.executable, "-m", "dropout_sim", "posterior=section9_abc", "draw=1",
                           "cohort.size=200", f"hydra.run.dir={post_dir}"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (post_dir / "summary.json").is_file()
