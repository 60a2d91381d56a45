#!/usr/bin/env python3
"""Take the README's screenshot of the dashboard (docs/dashboard.png) in headless Chromium.

Starts ``dropout-sim dashboard --no-browser`` on a free port, sets a scenario through the page
(screening from intake, school + health + PPT co-located), waits until every replicate is in
and saves a full-page screenshot. Needs the test extra and Debian's chromium.

    python experiments/dashboard_screenshot.py [--out docs/dashboard.png] [--replicates 10] [--size 3000]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

from dropout_sim.app.browser import HOW_TO_GET, find_chromium, launch_args, serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard.png"))
    parser.add_argument("--replicates", type=int, default=10)
    parser.add_argument("--size", type=int, default=3000)
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print(f"no Chromium: {HOW_TO_GET}", file=sys.stderr)
        return 2
    from playwright.sync_api import expect, sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "dropout_sim", "dashboard", "--no-browser", "--port", str(port),
                               "--replicates", str(args.replicates), f"cohort.size={args.size}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):  # (not the page itself: that would open a session which runs)
            if serving(url):
                break
            time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=launch_args())
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.locator("#status[data-state=done]").wait_for(timeout=600_000)
            box = page.locator(".ctl-intervention-screening_start_month input").first
            box.fill("0")
            box.press("Enter")
            for name in ("school", "health", "ppt"):
                page.locator(".ctl-regime-colocated label", has_text=name).first.click()
            page.locator("#command").filter(has_text="regime.colocated=[school,health,ppt]").wait_for(timeout=60_000)
            expect(page.locator("#status")).to_contain_text(f"done: {2 * args.replicates} of", timeout=900_000)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            print(page.locator("#headline").inner_text(), "|", page.locator("#status").inner_text())
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"screenshot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
