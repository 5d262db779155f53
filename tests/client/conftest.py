"""Start a real `rampart serve` (simulated provider, SQLite in a temp dir) for client tests."""
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    binary = os.environ.get("RAMPART_BIN", str(ROOT / "target" / "debug" / "rampart"))
    tmp = tmp_path_factory.mktemp("rampart")
    port = free_port()
    config = (ROOT / "examples" / "quickstart.toml").read_text()
    config = config.replace('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{port}"')
    config = config.replace('path = "rampart.db"', f'path = "{tmp / "rampart.db"}"')
    cfg = tmp / "rampart.toml"
    cfg.write_text(config)
    log = open(tmp / "serve.log", "w")
    proc = subprocess.Popen([binary, "serve", "--config", str(cfg)], stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("rampart serve did not start: " + (tmp / "serve.log").read_text())
    # The quickstart starts with a shadow stage; these tests check the canary cohorts, so the
    # operator promotes it to canary-5 through the admin API first.
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/admin/rollouts/support-v2/promote",
        data=json.dumps({"reason": "client tests need the canary stage"}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200, r.read()
    yield {"url": f"http://127.0.0.1:{port}", "db": tmp / "rampart.db"}
    proc.terminate()
    proc.wait(timeout=30)
