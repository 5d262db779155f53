"""Start real `rampart serve` processes with a rollout under traffic, for the dashboard tests.

Chromium is Debian's (`/usr/bin/chromium`, installed by `.ci/run`), driven by Playwright's
Python package; `playwright install` is never needed.
"""
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
CLASSES = ["cards", "transfers", "top_up"]
TENANTS = ["acme", "globex"]

CONFIG = """
[server]
listen = "{listen}"
shutdown_grace = "5s"
{token_line}

[store]
path = "{db}"
flush_interval = "50ms"

[providers.sim]
type = "mock"
[providers.sim.models.old]
style = "casual"
latency_ms = {{ median = 3, p95 = 6 }}
refusal_rate = 0.03
error_rate = 0.01
[providers.sim.models.new]
style = "formal"
latency_ms = {{ median = 4, p95 = 8 }}
length_factor = 1.3
refusal_rate = 0.06
error_rate = 0.02

[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "old"
[routes.support.variants.v2]
provider = "sim"
model = "new"

[rollouts.support-v2]
route = "support"
candidate = "v2"
stages = [
  {{ name = "canary-20", percent = 20, shadow_percent = 50, min_duration = "1h" }},
  {{ name = "full", percent = 100, min_duration = "1h" }},
]
[rollouts.support-v2.guardrails]
window = "2m"
check_interval = "1s"
error_rate_max = 0.3
refusal_rate_max_increase = 0.3
p95_latency_max_ratio = 10.0
"""


def free_port(host="127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def own_ip() -> str:
    """This machine's own non-loopback interface address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))  # no packet is sent; picks the outgoing interface
            ip = s.getsockname()[0]
        except OSError:
            ip = socket.gethostbyname(socket.gethostname())
    if ip.startswith("127.") or ip == "0.0.0.0":
        pytest.fail(f"no non-loopback interface address to test the access rule with (got {ip})")
    return ip


def http(method, url, body=None, headers=None):
    """(status, body text, headers) without raising on 4xx/5xx."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


class Gateway:
    def __init__(self, tmp: Path, token=None):
        self.port = free_port()
        self.token = token
        # Listening on 0.0.0.0 without a token must be accepted explicitly.
        token_line = ('admin_token_env = "RAMPART_UI_TEST_TOKEN"' if token
                      else "admin_allow_unauthenticated = true")
        cfg = tmp / "rampart.toml"
        cfg.write_text(CONFIG.format(listen=f"0.0.0.0:{self.port}", token_line=token_line, db=tmp / "rampart.db"))
        env = dict(os.environ)
        if token:
            env["RAMPART_UI_TEST_TOKEN"] = token
        binary = os.environ.get("RAMPART_BIN", str(ROOT / "target" / "debug" / "rampart"))
        self.log_path = tmp / "serve.log"
        self.proc = subprocess.Popen([binary, "serve", "--config", str(cfg)], env=env,
                                     stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if http("GET", self.url + "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            self.proc.kill()
            raise RuntimeError("rampart serve did not start: " + self.log_path.read_text())
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._traffic, daemon=True)
        self.thread.start()

    def _traffic(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            body = {"model": "support", "messages": [{"role": "user", "content": f"question {i % 500} about my card"}]}
            headers = {"x-rampart-routing-key": f"user-{i % 400}", "x-rampart-class": CLASSES[i % len(CLASSES)],
                       "x-rampart-tenant": TENANTS[(i // 3) % len(TENANTS)]}
            try:
                http("POST", self.url + "/v1/chat/completions", body, headers)
                self.sent += 1
            except OSError:
                pass
            time.sleep(0.01)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    g = Gateway(tmp_path_factory.mktemp("open"))
    yield g
    g.close()


@pytest.fixture(scope="session")
def token_gateway(tmp_path_factory):
    g = Gateway(tmp_path_factory.mktemp("token"), token="ui-test-token-7f3a")
    yield g
    g.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    """A fresh page that records console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.errors = []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()
