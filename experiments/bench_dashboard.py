#!/usr/bin/env python3
"""Dashboard speed: time to first numbers and to 20 paired replicates of a 3,000-student county.

Measures what the page waits for after a control changes, through the page's own code path:
validation (:meth:`Scenario.check`, which composes scenario and baseline as the CLI does) and
the page's runner (:class:`~dropout_sim.app.scenarios.BatchScenarioRunner`: one long-lived
batch runner, worker processes already started, as in ``dropout-sim dashboard``). Cases:

* **cold**: neither scenario nor baseline has run (a new county): 2 x N runs;
* **slider moved**: screening start -> 0 with the baseline cached: N runs;
* **moved mid-run**: a scenario is 1 s into its runs when the slider moves again: the old
  work is cancelled (runs in progress stopped) and the new scenario runs (baseline cached).

"First numbers" = the first pair (scenario and baseline of one replicate) is in. The page adds
up to 0.3 s of debounce and 0.25 s of polling on top. The machine may be shared: the load
average is printed beside each case, with the runs' CPU seconds and an estimate for an idle
machine (validation + one run's CPU for the first pair; all runs' CPU over the workers for all
pairs). ``--repeat`` measures everything again with a fresh runner (nothing cached).
``--profile`` also splits one run's CPU into the simulation and the batch runner's own work.

``--page`` measures the served page itself in headless Chromium (needs the test extra and
Debian's chromium), from the key press to the numbers on the screen: ``dropout-sim dashboard``
is started, the page loaded (today's services against the baseline: one config, N runs), then
the screening-start box is set to 0 (baseline cached: N runs), then the vocational share is
changed (a new county: 2 x N runs). Printed: seconds from Enter until the new scenario's first
headline and until all pairs are in (debounce, polling and drawing included), the times the
page reports itself, and the CPU seconds the server process (not its workers) used.

    python experiments/bench_dashboard.py [--size 3000] [--replicates 20] [--workers 2] [--repeat 2] [--profile] [--page]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from dropout_sim.app.planner import BASELINE, SCENARIO, Results, Scenario, build_controls
from dropout_sim.app.scenarios import BatchScenarioRunner
from dropout_sim.runs.api import compose_config

HEADER = (f"{'case':<15} {'check s':>8} {'first pair s':>13} {'all pairs s':>12} {'runs':>5} {'CPU s/run':>10} "
          f"{'idle first':>11} {'idle all':>10}  {'load (1 min) before/after':>26}  headline")


def _load() -> float:
    return os.getloadavg()[0]


def measure(runner: BatchScenarioRunner, sc: Scenario, label: str, interrupt: Scenario | None = None) -> dict:
    load0 = _load()
    if interrupt is not None:  # the previous scenario runs for 1 s, then the slider moves
        assert not interrupt.check()
        old = runner.start({BASELINE: interrupt.baseline_overrides(), SCENARIO: interrupt.overrides()},
                           range(interrupt.replicates))
        time.sleep(1.0)
        old.cancel()
    t0 = time.perf_counter()
    errors = sc.check()
    assert not errors, errors
    t_check = time.perf_counter() - t0
    handle = runner.start({BASELINE: sc.baseline_overrides(), SCENARIO: sc.overrides()}, range(sc.replicates))
    res = Results()
    first = None
    cpu: list[float] = []
    for r in handle.results(timeout=600):
        assert "error" not in r.summary, r.summary
        res.add(r.scenario, r.replicate, r.summary, r.curve)
        if not r.cached:
            cpu.append(r.cpu_seconds)
        if first is None and res.pairs():
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    assert len(res.pairs()) == sc.replicates
    per_run = sum(cpu) / len(cpu) if cpu else 0.0
    first_idle = t_check + per_run
    all_idle = t_check + sum(cpu) / runner.workers
    load1 = _load()
    print(f"{label:<15} {t_check:>8.2f} {first:>13.2f} {total:>12.2f} {len(cpu):>5} {per_run:>10.2f} "
          f"{first_idle:>11.1f} {all_idle:>10.1f}  {load0:>12.1f} / {load1:<11.1f}  {res.headline()}", flush=True)
    return {"case": label, "first": first, "all": total, "runs": len(cpu), "cpu_per_run": per_run,
            "load": (load0, load1)}


def profile(base: list[str], n: int = 3) -> None:
    """One process: the bare simulation's CPU per run against the batch runner's (config build,
    validation, hash, summary, the curve probe)."""
    from dropout_sim.model.model import DropoutModel
    from dropout_sim.runs.batch import BatchRunner, completion_curve

    cfg = compose_config(base)
    DropoutModel(cfg).run()  # warm
    t = time.process_time()
    for i in range(n):
        cfg.replicate = i
        model = DropoutModel(cfg)
        model.run()
    bare = (time.process_time() - t) / n
    with BatchRunner(base, n_jobs=1, probe=completion_curve, resume=False) as runner:
        runner.run([["replicate=99"]])  # compositions warmed up
        t = time.process_time()
        outs = runner.run([[f"replicate={i}"] for i in range(n)])
        batch = (time.process_time() - t) / n
    assert all(o.ok for o in outs)
    print(f"profile (one process, {n} runs): simulation alone {bare:.3f} s CPU per run; through the batch "
          f"runner {batch:.3f} s ({(batch - bare) * 1000:+.0f} ms, {100 * (batch - bare) / batch:.1f} % not "
          f"simulation); load {_load():.1f}", flush=True)


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` itself, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def page(size: int, replicates: int, workers: int | None, repeat: int) -> None:
    """The served page in headless Chromium: key press -> first headline / all pairs."""
    import socket
    import subprocess

    from dropout_sim.app.browser import HOW_TO_GET, find_chromium, launch_args, serving

    chromium = find_chromium()
    if chromium is None:
        print(f"--page: no Chromium: {HOW_TO_GET}")
        return
    from playwright.sync_api import sync_playwright

    vocational = compose_config([f"cohort.size={size}"]).cohort.vocational_share
    print(f"page ({size:,} students, {replicates} pairs, workers {workers or 'all'}): seconds from Enter")
    print(f"{'case':<34} {'runs':>5} {'first headline s':>17} {'all pairs s':>12} {'page says':<44} "
          f"{'server CPU s':>12}  load before/after")
    for _ in range(repeat):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "dropout_sim", "dashboard", "--no-browser", "--port", str(port),
               "--replicates", str(replicates), f"cohort.size={size}"]
        if workers:
            cmd[5:5] = ["--workers", str(workers)]
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/"
        try:
            for _ in range(240):  # (not the page itself: that would open a session which runs)
                if serving(url):
                    break
                time.sleep(0.5)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=launch_args())
                pg = browser.new_page(viewport={"width": 1400, "height": 1000})

                def case(label: str, runs: int, act, command_part: str | None) -> None:
                    load0, cpu0 = _load(), _cpu_of(server.pid)
                    t0 = time.perf_counter()
                    act()
                    if command_part:
                        pg.locator("#command").filter(has_text=command_part).wait_for(timeout=600_000)
                    pg.locator("#headline").filter(has_text=" pp").wait_for(timeout=600_000)
                    first = time.perf_counter() - t0
                    pg.locator("#status[data-state=done]").wait_for(timeout=600_000)
                    total = time.perf_counter() - t0
                    says = pg.locator("#status").inner_text().split("), ", 1)[-1]
                    print(f"{label:<34} {runs:>5} {first:>17.2f} {total:>12.2f} {says:<44} "
                          f"{_cpu_of(server.pid) - cpu0:>12.1f}  {load0:.1f} / {_load():.1f}", flush=True)

                def typed(css: str, value: str):
                    def act() -> None:
                        box = pg.locator(f"{css} input").first
                        box.fill(value)
                        box.press("Enter")
                    return act

                case("page load (today vs baseline)", replicates, lambda: pg.goto(url), None)
                case("screening start 0 (baseline cached)", replicates,
                     typed(".ctl-intervention-screening_start_month", "0"), "intervention.screening_start_month=0")
                share = round(vocational + 0.01, 2)
                case(f"vocational share {share:g} (new county)", 2 * replicates,
                     typed(".ctl-cohort-vocational_share", f"{share:g}"), f"cohort.vocational_share={share:g}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=3000, help="students per cohort")
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--repeat", type=int, default=1, help="measure everything this many times")
    parser.add_argument("--profile", action="store_true", help="also split a run's CPU (simulation / runner)")
    parser.add_argument("--page", action="store_true", help="only measure the served page in headless Chromium")
    args = parser.parse_args(argv)
    if args.page:
        page(args.size, args.replicates, args.workers, args.repeat)
        print(f"load average now {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min)")
        return 0
    base = [f"cohort.size={args.size}"]
    controls = build_controls(compose_config(base))
    values = {c.key: c.default for c in controls}
    values["replicates"] = args.replicates
    county = compose_config(base).county

    def sc(**kw) -> Scenario:
        return Scenario(controls, dict(values, **kw), base)

    if args.profile:
        profile(base)
    for rep in range(args.repeat):
        runner = BatchScenarioRunner(args.workers)
        t0 = time.perf_counter()
        runner.warm_up([base, [*base, "regime=siloed"]])  # as `dropout-sim dashboard` does
        assert not sc().check()  # the page validated its first scenario on load
        if rep == 0:
            print(f"dashboard runner: {args.size:,}-student county (warm-up {county.warmup_years} y), "
                  f"{args.replicates} paired replicates, {runner.workers} workers, {os.cpu_count()} CPUs; "
                  f"workers started in {time.perf_counter() - t0:.1f} s")
            print(HEADER)
        try:
            # nothing cached: a scenario (screening from month 8) and the baseline, 2 x N runs
            measure(runner, sc(**{"intervention.screening_start_month": 8}), "cold")
            measure(runner, sc(**{"intervention.screening_start_month": 0}), "slider moved")
            measure(runner, sc(**{"intervention.screening_start_month": 2}), "moved mid-run",
                    interrupt=sc(**{"intervention.screening_start_month": 1}))
        finally:
            runner.shutdown()
    print(f"load average now {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
