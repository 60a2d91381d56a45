"""Find a Chromium for headless browser tests and screenshots (Debian's ``chromium`` package).

Playwright's own browser download is not used: Playwright drives the system's Chromium through
``executable_path``. ``DROPOUT_SIM_CHROMIUM`` names another executable.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
HOW_TO_GET = "install Debian's chromium (apt-get install -y chromium) or set DROPOUT_SIM_CHROMIUM to a Chromium"


def find_chromium() -> str | None:
    """Path of a Chromium executable, or None."""
    env = os.environ.get("DROPOUT_SIM_CHROMIUM")
    if env:
        return env if Path(env).is_file() and os.access(env, os.X_OK) else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    for path in ("/usr/bin/chromium", "/usr/lib/chromium/chromium", "/snap/bin/chromium"):
        if Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return None


def launch_args() -> list[str]:
    """Chromium flags for a headless run as root in a container."""
    return ["--no-sandbox", "--disable-dev-shm-usage"]


def serving(base_url: str, timeout: float = 5.0) -> bool:
    """True once a server answers at ``base_url`` (``http://127.0.0.1:P/``). Asks for a path that
    is not a page (any HTTP answer, 404 included, means it is up): getting the page itself would
    open a dashboard session, which starts runs nobody looks at."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(base_url.rstrip("/") + "/dropout-sim-is-up", timeout=timeout).read()
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
