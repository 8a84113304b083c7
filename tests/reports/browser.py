"""A small Chrome DevTools Protocol client for checking reports in headless Chromium.

The browser runs offline: every request the page makes is intercepted (``Fetch``)
and any URL that is not local (``file:``, ``data:``, ``about:``) is recorded and
failed, so a report that reaches for the network fails its test without
touching the network. Console messages, uncaught exceptions and browser log
errors (such as Content-Security-Policy violations) are collected.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import time
import urllib.request
from base64 import b64decode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect
from websockets.sync.connection import Connection

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
LOCAL_SCHEMES = ("file:", "data:", "about:", "chrome:", "devtools:")
WIDTH = 1024


@dataclass
class PageReport:
    """What loading one page showed."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    remote_requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    print_screenshot: Path | None = None
    pdf_pages: int = 0
    height: int = 0
    main_width: int = 0
    """Width of the page's ``<main>`` at the viewport width (0 when it has none)."""


class Page:
    """One browser tab driven over its DevTools websocket."""

    def __init__(self, socket: Connection) -> None:
        self._socket = socket
        self._next = 0
        self.events: list[dict[str, Any]] = []
        self.report = PageReport("")

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        self._next += 1
        ident = self._next
        self._socket.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self._socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    def wait_for(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            message = json.loads(self._socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        method = message.get("method", "")
        params = message.get("params", {})
        if method == "Fetch.requestPaused":
            url = params["request"]["url"]
            if url.startswith(LOCAL_SCHEMES):
                self.send("Fetch.continueRequest", {"requestId": params["requestId"]})
            else:
                if url not in self.report.remote_requests:
                    self.report.remote_requests.append(url)
                self.send(
                    "Fetch.failRequest",
                    {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                )
            return
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(LOCAL_SCHEMES) and url not in self.report.remote_requests:
                self.report.remote_requests.append(url)
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
            self.report.console_errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            self.report.console_errors.append(f"exception: {params['exceptionDetails']}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.report.console_errors.append(f"{entry.get('source')}: {entry.get('text')}")
        self.events.append(message)

    def inspect(self, path: Path, screenshot: Path | None = None, width: int = WIDTH) -> PageReport:
        """Load ``path``, collect errors and requests, optionally take a full-page screenshot,
        a screenshot of the print preview (print media) and print to PDF (A4 from the
        page's ``@page`` rule)."""
        self.report = PageReport(path.as_uri())
        self.events.clear()
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": False},
        )
        self.send("Emulation.setEmulatedMedia", {"media": ""})
        self.send("Page.navigate", {"url": path.as_uri()})
        self.wait_for("Page.loadEventFired")
        # Let late console messages and requests arrive.
        self.send(
            "Runtime.evaluate",
            {"expression": "document.fonts.ready.then(() => 1)", "awaitPromise": True},
        )
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        self.report.height = math.ceil(size["height"])
        measured = self.send(
            "Runtime.evaluate",
            {
                "expression": "Math.round(document.querySelector('main')"
                "?.getBoundingClientRect().width ?? 0)",
                "returnByValue": True,
            },
        )
        self.report.main_width = int(measured["result"].get("value") or 0)
        if screenshot is not None:
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": width,
                    "height": self.report.height,
                    "deviceScaleFactor": 1,
                    "mobile": False,
                },
            )
            shot = self.send(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
            )
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(b64decode(shot["data"]))
            self.report.screenshot = screenshot
            # The print preview: print media at the width of an A4 page (96 dpi).
            self.send("Emulation.setEmulatedMedia", {"media": "print"})
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 794, "height": self.report.height, "deviceScaleFactor": 1,
                 "mobile": False},
            )  # fmt: skip
            preview = self.send(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
            )
            print_shot = screenshot.with_name(f"{screenshot.stem}.print.png")
            print_shot.write_bytes(b64decode(preview["data"]))
            self.report.print_screenshot = print_shot
            # Printing applies print media itself; no emulation may linger.
            self.send("Emulation.setEmulatedMedia", {"media": ""})
            pdf = b64decode(self.send("Page.printToPDF", {"preferCSSPageSize": True})["data"])
            screenshot.with_suffix(".pdf").write_bytes(pdf)
            self.report.pdf_pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
        self.send("Fetch.disable")
        return self.report


@contextmanager
def chromium(executable: str = CHROMIUM) -> Iterator[Page]:
    """Start headless Chromium with a throw-away profile and yield its first tab."""
    if shutil.which(executable) is None:
        raise FileNotFoundError(f"{executable} not found; `make test-browser` installs it")
    profile = Path(tempfile.mkdtemp(prefix="abs-pipeline-chromium-"))
    process = subprocess.Popen(
        [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.is_file() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chromium did not start its DevTools server")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
            targets = json.load(answer)
        page = next(t for t in targets if t.get("type") == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as socket:
            yield Page(socket)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
        shutil.rmtree(profile, ignore_errors=True)
