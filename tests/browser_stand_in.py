"""A stand-in for a person's browser in sign-in tests, run through the BROWSER variable.

No real browser can run here, so this script plays one: it opens the sandbox's sign-in
URL with requests (trusting only the sandbox CA), reads the form that Entra's
``response_mode=form_post`` page would submit, and posts it to the loopback redirect URI
where MSAL is listening. Like a real browser it returns at once and does the work in a
detached process, because Python's webbrowser module waits for the command to exit
before MSAL starts serving the redirect URI.

Environment: O365DKIM_TEST_BROWSER_CA (CA bundle), O365DKIM_TEST_BROWSER_LOG (file that
receives one line per step, for the test's assertions).
"""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import requests

TIMEOUT = 10.0
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class FormReader(HTMLParser):
    """Collects the action and hidden fields of the first form on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and not self.action:
            self.action = values.get("action", "")
        if tag == "input" and values.get("type") == "hidden":
            self.fields[values.get("name", "")] = values.get("value", "")


def log(line: str) -> None:
    path = os.environ.get("O365DKIM_TEST_BROWSER_LOG")
    if path:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def follow(url: str) -> None:
    """Sign in at ``url`` and post the result to the loopback redirect URI."""
    sandbox = requests.Session()
    sandbox.trust_env = False
    sandbox.verify = os.environ["O365DKIM_TEST_BROWSER_CA"]
    page = sandbox.get(url, allow_redirects=False, timeout=TIMEOUT)
    log(f"authorize {page.status_code}")
    if page.status_code != 200:
        log(f"page {page.text[:300]}")
        return
    form = FormReader()
    form.feed(page.text)
    if urlsplit(form.action).hostname not in LOOPBACK_HOSTS:
        # Only loopback is ever contacted; a form aimed anywhere else is a test failure.
        log(f"refused {form.action}")
        return
    loopback = requests.Session()
    loopback.trust_env = False
    answer = loopback.post(form.action, data=form.fields, timeout=TIMEOUT)
    log(f"redirect {answer.status_code} {'code' in form.fields}")


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--follow":
        try:
            follow(sys.argv[2])
        except Exception as err:
            log(f"error {type(err).__name__}: {err}")
        return 0
    log("opened")
    subprocess.Popen(
        [sys.executable, __file__, "--follow", sys.argv[1]],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
