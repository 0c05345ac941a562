"""Open a page in a real headless Chromium and report what a person's browser would: the console's
errors, failed loads, the sections shown, and a screenshot.

Driven over the DevTools protocol (a websocket), so console messages, uncaught exceptions and
failed requests are read as events, not scraped from Chromium's own log. Outside CI a machine
without Chromium skips the tests that need it; under `CI=true` they fail instead.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

from helpers import missing_program

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def find_chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        missing_program("Chromium is not installed (Debian: apt-get install chromium)")
    return found


@dataclass
class PageVisit:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    section_ids: list[str] = field(default_factory=list)
    title: str = ""


class DevTools:
    def __init__(self, url: str) -> None:
        self.socket = websocket.create_connection(url, timeout=30)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: object) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout} s")
            self.events.append(json.loads(self.socket.recv()))


def _errors(events: list[dict[str, Any]]) -> list[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            found.append(f"console: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        elif method == "Network.loadingFailed":
            found.append(f"failed load: {params.get('errorText')}")
    return found


def _get_json(url: str) -> list[dict[str, Any]]:
    """A JSON document from the browser's DevTools endpoint on 127.0.0.1."""
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - the local browser
        listed: list[dict[str, Any]] = json.loads(answer.read())
    return listed


def visit(page: Path, screenshot: Path | None = None, width: int = 1280) -> PageVisit:
    """Load `page` (a local file), wait for it, and read what the browser saw."""
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = subprocess.Popen(
            [
                chromium,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stderr is not None
            browser_url = None
            for line in process.stderr:
                if match := LISTENING.search(line):
                    browser_url = match.group(1)
                    break
            assert browser_url, "Chromium did not open its DevTools port"
            port = browser_url.split(":")[2].split("/")[0]
            targets = _get_json(f"http://127.0.0.1:{port}/json/list")
            target = next(t for t in targets if t["type"] == "page")
            tools = DevTools(target["webSocketDebuggerUrl"])
            for domain in ("Runtime", "Log", "Network", "Page"):
                tools.call(f"{domain}.enable")
            tools.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            tools.call("Page.navigate", url=page.resolve().as_uri())
            tools.wait_for("Page.loadEventFired")
            time.sleep(0.5)  # late console messages
            evaluated = tools.call(
                "Runtime.evaluate",
                expression="JSON.stringify({title: document.title, sections: "
                "[...document.querySelectorAll('section[id]')].map(s => s.id)})",
                returnByValue=True,
            )
            seen = json.loads(evaluated["result"]["value"])
            if screenshot is not None:
                shot = tools.call(
                    "Page.captureScreenshot", format="png", captureBeyondViewport=True
                )
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            requests = [
                e["params"]["request"]["url"]
                for e in tools.events
                if e.get("method") == "Network.requestWillBeSent"
            ]
            tools.socket.close()
            return PageVisit(_errors(tools.events), requests, seen["sections"], seen["title"])
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)
            if process.stderr is not None:
                process.stderr.close()
