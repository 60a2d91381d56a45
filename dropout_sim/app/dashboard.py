"""``dropout-sim dashboard [--port P] [--no-browser] [overrides]``: the planner's page (Panel).

Controls (each labelled in plain words with the config key it sets) set a scenario; the page
runs paired replicates of the scenario and of the baseline (today's siloed services in the
same county) in the background and shows, as replicates stream in: completion curves with
95 % bands and the five-year line, the headline ``+X.X pp [lo, hi]``, time to help and to OT,
hours paid and used per agency and where the queues are, NOK per extra completer with the
break-even value, and the gain by group. "Reproduce" gives the scenario as the exact
``dropout-sim`` command and as an experiment YAML file, and the per-replicate results as CSV.

A value outside the schema's range shows the CLI's one-line message next to its control and
is never run. Changing a control cancels the work of the previous scenario; finished runs
are cached (the baseline is computed once per county).

The server listens on 127.0.0.1 only and serves every script and style itself (no CDN), so
the page works offline. Needs the ``dashboard`` extra: ``pip install 'dropout_sim[dashboard]'``.
Everything the page computes is in :mod:`dropout_sim.app.planner` (tested without a browser);
runs go through a :class:`~dropout_sim.app.scenarios.ScenarioRunner` (the batch runner,
:class:`~dropout_sim.app.scenarios.BatchScenarioRunner`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any, Sequence

from ..errors import EXIT_BAD_INPUT
from .planner import (BASELINE, SCENARIO, Control, Results, Scenario, build_controls, check_overrides, command,
                      experiment_yaml, five_year_value)

DEFAULT_PORT = 5006
POLL_MS = 250
DEBOUNCE_S = 0.3
REDRAW_S = 1.0
"""While replicates stream in, the page is redrawn at most this often (the first pair and the
last run at once): drawing the curves takes CPU the runs on a small machine need."""

BLUE, GREY = "#1f77b4", "#7f7f7f"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table id='{table_id}' style='border-collapse:collapse;font-size:13px'><tr>{head}</tr>{body}</table>"


def _num(x: float, fmt: str = "{:.1f}") -> str:
    return "-" if x is None or not math.isfinite(x) else fmt.format(x)


def _signed_ci(p: Any, digits: int = 1) -> str:
    if p.n == 0 or not math.isfinite(p.diff):
        return "-"
    f = f"{{:+.{digits}f}}"
    ci = f" [{f.format(p.lo)}, {f.format(p.hi)}]" if math.isfinite(p.lo) else ""
    return f.format(p.diff) + ci


def css_class(key: str) -> str:
    """The CSS class of a control's widget (``ctl-intervention-screening_start_month``), for tests."""
    return "ctl-" + key.replace(".", "-")


class Dashboard:
    """One browser session's page: widgets, the current run and its results."""

    def __init__(self, runner: Any, base_overrides: Sequence[str] = (), replicates: int = 20):
        import panel as pn

        self.pn = pn
        self.runner = runner
        self.base_overrides = list(base_overrides)
        base, err = check_overrides(self.base_overrides)
        if err:
            raise ValueError(err)
        self.controls = build_controls(base)
        for c in self.controls:
            if c.key == "replicates":
                c.default = replicates
        self.widgets: dict[str, Any] = {}
        self.errors: dict[str, Any] = {}
        self.handle = None
        self.results = Results()
        self.failures: list[str] = []
        self.total = 0
        self.started = 0.0
        self.first_numbers_s: float | None = None
        self.finished_s: float | None = None
        self.current: tuple[str, str] | None = None
        self.scenario: Scenario | None = None
        self._dirty_at: float | None = time.monotonic()
        self._rendered = -1
        self._rendered_at = 0.0
        self._rendered_pairs = 0
        self._build()

    # ---------------------------------------------------------------- widgets
    def _widget(self, c: Control) -> Any:
        w = self.pn.widgets
        tip = f"{c.doc}; allowed: " + (f"{c.lo:g} to {c.hi:g}" if c.lo is not None and c.hi is not None
                                       else ", ".join(c.choices) if c.choices else "-")
        common = {"name": c.title, "sizing_mode": "stretch_width", "css_classes": [css_class(c.key)]}
        if c.kind == "slider":  # a fixed width: stretched, its typing box collapses to nothing
            return w.EditableIntSlider(value=c.default, start=int(c.lo or 0), end=int(c.soft_hi or c.hi), step=1,
                                       name=c.title, css_classes=[css_class(c.key)], width=390)
        common["description"] = tip
        if c.kind == "int":
            return w.IntInput(value=c.default, **common)
        if c.kind == "float":
            return w.FloatInput(value=c.default, step=0.05 if (c.hi or 0) <= 1 else 0.5, **common)
        if c.kind == "choice":
            return w.Select(options=list(c.choices), value=c.default, **common)
        if c.kind == "bool":
            return w.Checkbox(value=c.default, name=c.title, sizing_mode="stretch_width",
                              css_classes=[css_class(c.key)])
        if c.kind == "agencies":
            return w.CheckBoxGroup(options=list(c.choices), value=list(c.default), inline=True, name=c.title,
                                   css_classes=[css_class(c.key)])
        raise ValueError(c.kind)

    def _build(self) -> None:
        pn = self.pn
        groups: dict[str, list] = {}
        for c in self.controls:
            widget = self._widget(c)
            widget.param.watch(self._changed, "value")
            self.widgets[c.key] = widget
            err = pn.pane.HTML("", visible=False, styles={"color": "#b00020", "font-size": "12px"},
                               css_classes=["control-error"], sizing_mode="stretch_width")
            self.errors[c.key] = err
            label = [pn.pane.HTML(f"<b>{c.title}</b>", margin=(4, 5, 0, 5))] if c.kind == "agencies" else []
            groups.setdefault(c.group, []).append(pn.Column(*label, widget, err, margin=0,
                                                            sizing_mode="stretch_width"))
        self.extra = pn.widgets.TextInput(name="Further overrides of the scenario (key=value, space-separated)",
                                          css_classes=[css_class("extra")],
                                          placeholder="e.g. agencies.ppt.siloed_delay_months=1", value="",
                                          sizing_mode="stretch_width")
        self.extra.param.watch(self._changed, "value")
        self.errors[""] = pn.pane.HTML("", visible=False, styles={"color": "#b00020", "font-size": "12px"},
                                       css_classes=["control-error"], sizing_mode="stretch_width")
        groups.setdefault("Run", []).extend([self.extra, self.errors[""]])
        cards = [pn.Card(*items, title=name, sizing_mode="stretch_width", collapsed=name in ("Staffing",))
                 for name, items in groups.items()]
        self.sidebar = pn.Column(*cards, width=430, scroll=True, height=1000)

        self.progress = pn.indicators.Progress(value=0, max=1, width=300, bar_color="primary", name="progress")
        self.status = pn.pane.HTML("<span id='status'>starting</span>")
        self.headline = pn.pane.HTML(self._headline_html(), sizing_mode="stretch_width")
        self.curve = pn.pane.Matplotlib(None, dpi=96, tight=False, format="png", width=640, height=400)
        self.process = pn.pane.HTML("")
        self.agency = pn.pane.HTML("")
        self.costs = pn.pane.HTML("")
        self.groups = pn.pane.HTML("")
        self.reproduce = pn.pane.HTML("")
        self.yaml_download = pn.widgets.FileDownload(callback=self._yaml, filename="dashboard.yaml",
                                                     label="Download scenario YAML", button_type="default")
        self.csv_download = pn.widgets.FileDownload(callback=self._csv, filename="dashboard_results.csv",
                                                    label="Download results CSV", button_type="default")
        results = pn.Column(
            pn.Row(self.progress, self.status),
            self.headline,
            self.curve,
            pn.pane.HTML("<h3>Time to help and to OT</h3>"), self.process,
            pn.pane.HTML("<h3>Hours paid and used per agency; where the queues are</h3>"), self.agency,
            pn.pane.HTML("<h3>Costs</h3>"), self.costs,
            pn.pane.HTML("<h3>Who gains</h3>"), self.groups,
            pn.pane.HTML("<h3>Reproduce</h3>"), self.reproduce, pn.Row(self.yaml_download, self.csv_download),
            sizing_mode="stretch_width")
        title = pn.pane.HTML("<h2 style='margin:4px 0'>dropout_sim: planner's dashboard</h2>"
                             "<div style='color:#555'>Completion within five years (60 months from the first "
                             "day of Vg1) of a scenario against today's siloed services in the same county, "
                             "paired by replicate.</div>")
        self.page = pn.Column(title, pn.Row(self.sidebar, results, sizing_mode="stretch_width"),
                              sizing_mode="stretch_width")
        pn.state.add_periodic_callback(self._poll, period=POLL_MS)
        if pn.state.curdoc is not None:  # a closed tab's runs are stale work too
            pn.state.on_session_destroyed(lambda _ctx: self._cancel())

    def _changed(self, *_: Any) -> None:
        self._dirty_at = time.monotonic()

    def values(self) -> dict[str, Any]:
        return {key: w.value for key, w in self.widgets.items()}

    # ---------------------------------------------------------------- running
    def refresh(self) -> None:
        """Validate the controls; if the scenario changed, cancel stale work and start anew.

        Every pane changes in one message, so the page never shows a new command beside the
        old scenario's status."""
        with self.pn.io.hold():
            self._refresh()

    def _refresh(self) -> None:
        extra = [t for t in (self.extra.value or "").split() if t]
        sc = Scenario(self.controls, self.values(), self.base_overrides, extra)
        errors = sc.check()
        for key, pane in self.errors.items():
            msg = errors.get(key)
            pane.object = f"<span class='error' data-key='{key}'>{msg}</span>" if msg else ""
            pane.visible = bool(msg)
        if errors:
            self._cancel()
            self.status.object = "<span id='status'>not run: fix the value marked in red</span>"
            return
        s_cfg, b_cfg = sc.composed[SCENARIO], sc.composed[BASELINE]
        from ..runs.results import config_hash, config_yaml

        key = (config_hash(config_yaml(s_cfg)), config_hash(config_yaml(b_cfg)), sc.replicates)
        self.scenario = sc
        self._render_reproduce()
        if key == self.current:
            return
        self._cancel()
        self.current = key
        self.results = Results(posterior=sc.posterior)
        self.failures = []
        self.total = 2 * sc.replicates
        self.started = time.monotonic()
        self.first_numbers_s = self.finished_s = None
        self._rendered = -1
        self.handle = self.runner.start({BASELINE: sc.baseline_overrides(), SCENARIO: sc.overrides()},
                                        range(sc.replicates), posterior=bool(sc.posterior))
        self._render_panes()

    def _cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.current = None

    def _poll(self) -> None:
        if self._dirty_at is not None and time.monotonic() - self._dirty_at >= DEBOUNCE_S:
            self._dirty_at = None
            self.refresh()
        if self.handle is None:
            return
        for r in self.handle.results(timeout=0):
            if "error" in r.summary:
                self.failures.append(f"{r.scenario} replicate {r.replicate}: {r.summary['error']}")
                continue
            self.results.add(r.scenario, r.replicate, r.summary, r.curve)
        done = self.results.done + len(self.failures)
        if self.results.pairs() and self.first_numbers_s is None:
            self.first_numbers_s = time.monotonic() - self.started
        if done >= self.total and self.finished_s is None:
            self.finished_s = time.monotonic() - self.started
        if done != self._rendered and (done >= self.total or self._rendered_pairs == 0 and self.results.pairs()
                                       or time.monotonic() - self._rendered_at >= REDRAW_S):
            self._render()

    # ---------------------------------------------------------------- rendering
    def _headline_html(self) -> str:
        r = self.results
        p = r.paired("completion_5y", 100.0)
        base = _num(p.baseline) + " %" if p.n else "-"
        scen = _num(p.scenario) + " %" if p.n else "-"
        return (f"<div style='font-size:15px'>Completion within 60 months, scenario minus baseline "
                f"(paired, 95 % replicate interval, {p.n} pairs):</div>"
                f"<div id='headline' style='font-size:32px;font-weight:bold'>{r.headline()}</div>"
                f"<div style='font-size:13px;color:#555'>scenario <span id='scenario-completion'>{scen}</span>, "
                f"baseline <span id='baseline-completion'>{base}</span>. "
                f"<span id='parameter-interval'>{r.parameter_interval()}</span>.</div>")

    def _render(self) -> None:
        """Update every pane in one message, the status last (tests wait on the status)."""
        with self.pn.io.hold():
            self._render_panes()

    def _render_panes(self) -> None:
        r = self.results
        done, total = r.done + len(self.failures), max(self.total, 1)
        self._rendered = done
        self._rendered_at = time.monotonic()
        self._rendered_pairs = len(r.pairs())
        self.progress.max = total
        self.progress.value = min(done, total)
        state = "done" if done >= total else "running"
        took = f"{self.finished_s:.1f} s" if self.finished_s is not None else \
            f"{time.monotonic() - self.started:.1f} s" if self.started else ""
        first = f"; first numbers after {self.first_numbers_s:.1f} s" if self.first_numbers_s is not None else ""
        failed = (f"; <b>{len(self.failures)} failed</b> (not in the numbers): {self.failures[0]}"
                  if self.failures else "")
        status = (f"<span id='status' data-state='{state}'>{state}: {done} of {total} runs "
                  f"({len(r.pairs())} pairs), {took}{first}{failed}</span>")
        self.headline.object = self._headline_html()
        self.curve.object = self._curve_figure()
        self.process.object = _html_table(
            ["", "baseline", "scenario", "difference [95% CI]"],
            [(label, _num(p.baseline) + f" {unit}", _num(p.scenario) + f" {unit}", _signed_ci(p))
             for label, p, unit in r.process()], "process")
        rows = []
        for a in r.agencies():
            rows.append((a["agency"],
                         f"{_num(a['baseline_hours_paid_per_year'], '{:,.0f}')} / {_num(a['baseline_hours_used_per_year'], '{:,.0f}')}",
                         f"{_num(a['scenario_hours_paid_per_year'], '{:,.0f}')} / {_num(a['scenario_hours_used_per_year'], '{:,.0f}')}",
                         f"{_num(100 * a['scenario_utilisation'], '{:.0f}')} %",
                         f"{_num(100 * a['scenario_queue_month_share'], '{:.0f}')} %",
                         _num(a["scenario_mean_queue"]), _num(a["scenario_mean_wait_months"])))
        self.agency.object = _html_table(
            ["agency", "baseline hours paid / used per year", "scenario hours paid / used per year",
             "scenario utilisation", "months with a queue", "mean queue (students)", "mean wait (months)"],
            rows, "agencies")
        c = r.costs()
        if r.pairs():
            per = c["nok_per_extra_completer"]
            ci = (f" [{_num(c['nok_per_extra_completer_ci_low'], '{:,.0f}')}, "
                  f"{_num(c['nok_per_extra_completer_ci_high'], '{:,.0f}')}]"
                  if math.isfinite(c["nok_per_extra_completer_ci_low"]) else " [no finite interval yet: the gain "
                  "is not clearly above zero]")
            text = (f"Extra NOK paid per year: <b>{_num(c['extra_nok_per_year'], '{:+,.0f}')}</b>; extra completers "
                    f"per cohort: <b>{_num(c['extra_completers_per_cohort'], '{:+.1f}')}</b><br>"
                    f"NOK per extra completer: <b id='nok-per-completer'>"
                    + (f"{_num(per, '{:,.0f}')}{ci}" if math.isfinite(per) else "no extra completers")
                    + f"</b><br>Break-even value of one completer: <b id='break-even'>"
                    f"{_num(c['break_even_nok'], '{:,.0f}')}</b> NOK")
            if math.isfinite(c["benefit_cost_ratio"]):
                text += (f"<br>Benefit-cost ratio at NOK {c['value_per_completer_nok']:,.0f} per completer: "
                         f"<b>{c['benefit_cost_ratio']:.2f}</b>")
            else:
                text += ("<br><span style='color:#555'>Set costs.value_per_completer_nok (e.g. 7000000, Falch "
                         "2012) under further overrides for a benefit-cost ratio.</span>")
            text += ("<br><span style='color:#555;font-size:12px'>NOK paid: posts of every agency incl. idle "
                     "hours, plus elevtjeneste premises; one year's extra cost over one cohort's extra "
                     "completers (steady state); Fieller 95 % interval over the pairs.</span>")
        else:
            text = "waiting for the first pair of runs"
        self.costs.object = text
        self.groups.object = _html_table(
            ["by", "group", "baseline %", "scenario %", "gain, pp [95% CI]"],
            [(by, g, _num(p.baseline), _num(p.scenario), _signed_ci(p)) for by, g, p in r.groups()], "groups")
        self.status.object = status

    def _curve_figure(self) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.6, 4.0))
        ax = fig.add_subplot()
        # the scenario first, the baseline dashed on top: when they nearly coincide both stay visible
        for name, colour, label, style in ((SCENARIO, BLUE, "scenario", "-"),
                                           (BASELINE, GREY, "baseline: today's siloed services", "--")):
            x, mean, lo, hi = self.results.curve_band(name)
            if x.size == 0:
                continue
            at60 = five_year_value(x, mean)
            ax.fill_between(x, lo * 100, hi * 100, color=colour, alpha=0.2, lw=0)
            ax.plot(x, mean * 100, color=colour, lw=1.8, ls=style,
                    label=f"{label} ({at60 * 100:.1f} % at 60 months)" if math.isfinite(at60) else label)
        ax.axvline(60, color="black", ls=":", lw=1.2, label="five years (60 months)")
        ax.set_xlabel("months since the first day of Vg1")
        ax.set_ylabel("completed (%)")
        ax.set_title("Completion curves, mean and 95 % band over replicates", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        fig.subplots_adjust(left=0.1, right=0.98, bottom=0.12, top=0.93)  # fixed: a tight layout costs a redraw
        return fig

    def _render_reproduce(self) -> None:
        import html

        sc = self.scenario
        if sc is None:
            return
        n, post = sc.replicates, bool(sc.posterior)
        self.reproduce.object = (
            "<div>The scenario, one run:</div>"
            f"<pre id='command' style='white-space:pre-wrap'>{html.escape(command(sc.overrides()))}</pre>"
            f"<div>Its {n} paired replicates and the baseline's, as a sweep and report:</div>"
            f"<pre id='sweep-command' style='white-space:pre-wrap'>"
            f"{html.escape(command(sc.overrides(), n, post))} hydra/launcher=joblib hydra.sweep.dir=multirun/scenario\n"
            f"{html.escape(command(sc.baseline_overrides(), n, post))} hydra/launcher=joblib "
            "hydra.sweep.dir=multirun/baseline</pre>")

    def _yaml(self) -> Any:
        import io

        sc = self.scenario
        text = experiment_yaml(sc.overrides(), "dashboard", sc.replicates, bool(sc.posterior)) if sc else ""
        return io.StringIO(text)

    def _csv(self) -> Any:
        import io

        return io.StringIO(self.results.csv())


def local_resources() -> None:
    """Serve Bokeh's and Panel's scripts and styles from this server, never from a CDN."""
    import os

    os.environ.setdefault("BOKEH_RESOURCES", "server")
    import panel as pn

    pn.config.inline = False
    pn.extension(design="native", inline=False)


def _warm_matplotlib() -> None:
    """Draw one figure now: Matplotlib's first figure in a process takes most of a second
    (fonts), which would otherwise delay the first numbers of the first page."""
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="x")
    ax.legend()
    fig.savefig(io.BytesIO(), format="png", dpi=96)


def serve(port: int = DEFAULT_PORT, show: bool = True, base_overrides: Sequence[str] = (),
          replicates: int = 20, workers: int | None = None) -> None:
    """Serve the dashboard on 127.0.0.1:``port`` until interrupted."""
    local_resources()
    import panel as pn

    from .scenarios import BatchScenarioRunner

    runner = BatchScenarioRunner(workers)  # one batch runner for the app's lifetime
    # before the server's threads exist (the workers are forked from this process); the
    # starting county's scenario and baseline composed ahead
    runner.warm_up([list(base_overrides), [*base_overrides, "regime=siloed"]])
    for overrides in ([*base_overrides], [*base_overrides, "regime=siloed"]):
        check_overrides(overrides)  # the page's validation composes them once, now
    _warm_matplotlib()

    def page() -> Any:
        return Dashboard(runner, base_overrides, replicates).page

    print(f"dropout-sim dashboard: http://127.0.0.1:{port}/  (Ctrl+C to stop)", flush=True)
    try:
        pn.serve({"/": page}, port=port, address="127.0.0.1", show=show, title="dropout_sim dashboard",
                 websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"], print_url=False)
    finally:
        runner.shutdown()


def main(argv: list[str] | None = None) -> int:
    """``dropout-sim dashboard``; exit 2 with one line when the extra is missing or an argument is bad."""
    parser = argparse.ArgumentParser(prog="dropout-sim dashboard",
                                     description="The planner's dashboard in the browser (127.0.0.1).")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--replicates", type=int, default=20, help="paired replicates per scenario (default 20)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("overrides", nargs="*", help="the county to start from (e.g. cohort.size=5000)")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        print(f"dropout-sim: error: --port = {args.port} is not allowed; allowed: between 1 and 65535",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if not 1 <= args.replicates <= 200:
        print(f"dropout-sim: error: --replicates = {args.replicates} is not allowed; allowed: between 1 and 200",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        import panel  # noqa: F401
    except ImportError:
        print("dropout-sim: error: the dashboard needs the dashboard extra: pip install 'dropout_sim[dashboard]'",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    _, err = check_overrides(args.overrides)
    if err:
        print(err, file=sys.stderr)
        return EXIT_BAD_INPUT
    serve(args.port, not args.no_browser, args.overrides, args.replicates, args.workers)
    return 0
