"""The dashboard in a real browser: headless Chromium through Playwright (pytest-playwright).

The served page is loaded, the screening-start control is changed, and the headline, the
completions and the downloaded per-replicate results shown are compared with the batch
runner's numbers for the same configs; a bad value shows the CLI's line
next to its control; the page loads nothing from outside 127.0.0.1; a screenshot is saved.

Playwright uses Debian's chromium through ``executable_path`` (found by
:func:`dropout_sim.app.browser.find_chromium`). In CI (``CI=true``) a missing browser or
missing packages fail; elsewhere these tests skip with one line saying how to get them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dropout_sim.app.browser import HOW_TO_GET, find_chromium, launch_args, serving

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need(ok: bool, reason: str) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


try:
    import panel  # noqa: F401
    import playwright.sync_api  # noqa: F401
    import pytest_playwright  # noqa: F401
except ImportError as exc:  # the page, browser and page fixtures come from these packages
    _reason = f"browser tests need panel, playwright and pytest-playwright ({exc.name} missing): pip install -e '.[test]'"
    if IN_CI:
        raise RuntimeError(f"CI=true: {_reason}") from None
    pytest.skip(_reason, allow_module_level=True)

pytestmark = pytest.mark.slow

BASE = ["cohort.size=300", "county.warmup_years=2", "horizon_months=60"]
REPLICATES = 3


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch arguments with the system Chromium (fails in CI if missing)."""
    path = find_chromium()
    _need(path is not None, f"no Chromium for the browser tests: {HOW_TO_GET}")
    return {**browser_type_launch_args, "executable_path": path, "args": launch_args()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need(find_chromium() is not None, f"no Chromium for the browser tests: {HOW_TO_GET}")
    port = _free_port()
    log = tmp_path_factory.mktemp("dashboard") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "DROPOUT_SIM_"))}
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "dropout_sim", "dashboard", "--no-browser", "--port", str(port),
                                 "--replicates", str(REPLICATES), "--workers", "2", *BASE],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while not serving(url):  # (not the page itself: that would open a session which runs)
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dashboard did not start: {log.read_text()[-2000:]}", pytrace=False)
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _batch_runner_results(overrides: list[str], baseline: list[str]):
    """The batch runner's outcomes for these configs (in this process, without the page) as
    :class:`Results`, and the per-replicate completion of each."""
    from dropout_sim.app.planner import BASELINE, SCENARIO, Results
    from dropout_sim.runs.batch import BatchRunner, completion_curve

    names = [(name, r) for name in (SCENARIO, BASELINE) for r in range(REPLICATES)]
    runs = [[*(overrides if name == SCENARIO else baseline), f"replicate={r}"] for name, r in names]
    with BatchRunner(n_jobs=1, probe=completion_curve) as runner:
        outs = runner.run(runs)
    res = Results()
    for (name, r), out in zip(names, outs):
        assert out.ok, out.error
        res.add(name, r, out.summary, out.value)
    return res


def _wait_done(page, command_part: str | None = None) -> None:
    if command_part:
        page.locator("#command").filter(has_text=command_part).wait_for(timeout=60_000)
    page.locator("#status[data-state=done]").wait_for(timeout=120_000)


def test_dashboard_in_chromium(server, page, tmp_path):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(server)
    _wait_done(page)
    assert re.fullmatch(r"[+-]\d+\.\d pp \[[+-]\d+\.\d, [+-]\d+\.\d\]", page.locator("#headline").inner_text())

    # move screening start to intake: the page reruns and its headline equals the direct runs
    box = page.locator(".ctl-intervention-screening_start_month input").first
    box.fill("0")
    box.press("Enter")
    _wait_done(page, "intervention.screening_start_month=0")
    # the numbers shown are the batch runner's numbers for the same configs
    expected = _batch_runner_results([*BASE, "intervention.screening_start_month=0"], [*BASE, "regime=siloed"])
    assert page.locator("#headline").inner_text() == expected.headline()
    assert page.locator("#scenario-completion").inner_text() == \
        f"{expected.paired('completion_5y', 100.0).scenario:.1f} %"
    assert page.locator("#baseline-completion").inner_text() == \
        f"{expected.paired('completion_5y', 100.0).baseline:.1f} %"
    assert "intervention.screening_start_month=0" in page.locator("#command").inner_text()
    assert page.locator("#groups").inner_text().count("track") == 2
    # Reproduce: the results and the scenario download
    with page.expect_download(timeout=30_000) as info:
        page.get_by_text("Download results CSV").click()
    rows = Path(info.value.path()).read_text().splitlines()
    assert rows[0].startswith("scenario,replicate,completion_5y") and len(rows) == 1 + 2 * REPLICATES
    # every replicate's completion in the download is the batch runner's, to the last digit
    shown = {(row.split(",")[0], int(row.split(",")[1])): float(row.split(",")[2]) for row in rows[1:]}
    assert shown == {(name, r): s["completion_5y"] for name, runs in expected.summaries.items()
                     for r, s in runs.items()}
    with page.expect_download(timeout=30_000) as info:
        page.get_by_text("Download scenario YAML").click()
    assert "screening_start_month: 0" in Path(info.value.path()).read_text()
    screenshot = tmp_path / "dashboard.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a value outside the schema's range: the CLI's one line next to the control, nothing run
    box = page.locator(".ctl-intervention-risk_threshold input").first
    box.fill("1.5")
    box.press("Enter")
    error = page.locator(".error[data-key='intervention.risk_threshold']")
    error.wait_for(timeout=30_000)
    assert error.inner_text() == ("dropout-sim: error: intervention.risk_threshold = 1.5 is not allowed; "
                                  "allowed: between 0 and 1 (risk score (0-1))")
    assert "not run" in page.locator("#status").inner_text()

    outside = [u for u in requests if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1", "blob:", "data:"))]
    assert outside == [], "the page must work offline"
