"""The official OpenAI Python SDK against a rollout whose candidate is an `anthropic` provider.

Both variants are served by `rampart mock-llm` over real HTTP: the baseline through the `openai`
provider (`/v1/chat/completions`), the candidate through the `anthropic` provider
(`/v1/messages`, Anthropic's format), so rampart's translation runs both ways.
"""
import json
import os
import socket
import subprocess
import time

import openai
import pytest
from conftest import ROOT, free_port


def wait_port(port: int, proc: subprocess.Popen, log) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited: " + open(log.name).read())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)  # polling for the port to open, not waiting for a result
    proc.kill()
    raise RuntimeError("did not start: " + open(log.name).read())


@pytest.fixture(scope="module")
def anthropic_rollout(tmp_path_factory):
    binary = os.environ.get("RAMPART_BIN", str(ROOT / "target" / "debug" / "rampart"))
    tmp = tmp_path_factory.mktemp("anthropic")
    mock_port, port = free_port(), free_port()
    mock_log = open(tmp / "mock.log", "w")
    mock = subprocess.Popen(
        [binary, "mock-llm", "--listen", f"127.0.0.1:{mock_port}"], stdout=mock_log, stderr=mock_log
    )
    wait_port(mock_port, mock, mock_log)
    cfg = tmp / "rampart.toml"
    cfg.write_text(
        f"""
[server]
listen = "127.0.0.1:{port}"
[store]
path = "{tmp / 'rampart.db'}"
[providers.oai]
type = "openai"
base_url = "http://127.0.0.1:{mock_port}/v1"
[providers.claude]
type = "anthropic"
base_url = "http://127.0.0.1:{mock_port}"
retries = 0
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "oai"
model = "casual"
[routes.support.variants.v2]
provider = "claude"
model = "casual"
params = {{ max_tokens = 512 }}
[rollouts.support-v2]
route = "support"
candidate = "v2"
stages = [ {{ name = "canary", percent = 100, min_duration = "1h" }} ]
"""
    )
    log = open(tmp / "serve.log", "w")
    proc = subprocess.Popen([binary, "serve", "--config", str(cfg)], stdout=log, stderr=log)
    wait_port(port, proc, log)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)
    mock.terminate()
    mock.wait(timeout=30)


def client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{url}/v1",
        api_key="unused",
        default_headers={"x-rampart-routing-key": key},
        max_retries=0,
    )


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "track_card",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    }
]


def test_json_answer_from_the_anthropic_candidate(anthropic_rollout):
    raw = client(anthropic_rollout, "user-1").chat.completions.with_raw_response.create(
        model="support", messages=[{"role": "user", "content": "Where is my card?"}]
    )
    assert raw.headers["x-rampart-variant"] == "v2"
    answer = raw.parse()
    assert answer.object == "chat.completion"
    assert len(answer.choices[0].message.content) > 5
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0


def test_streamed_answer_from_the_anthropic_candidate(anthropic_rollout):
    stream = client(anthropic_rollout, "user-1").chat.completions.create(
        model="support",
        messages=[{"role": "user", "content": "Where is my card?"}],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text) > 5
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


def test_two_turn_tool_call_keeps_the_arguments(anthropic_rollout):
    c = client(anthropic_rollout, "user-1")
    first = c.chat.completions.create(
        model="support",
        tools=TOOLS,
        messages=[{"role": "user", "content": "Track card 1234"}],
    )
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "track_card"
    assert json.loads(call.function.arguments) == {"query": "Track card 1234"}

    second = c.chat.completions.create(
        model="support",
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "Track card 1234"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": "shipped on Monday"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    assert "shipped on Monday" in second.choices[0].message.content


def test_an_untranslatable_request_falls_back_to_the_baseline_marked(anthropic_rollout):
    # Anthropic has no `n`: the candidate refuses it before the first byte, so the canary user
    # gets the baseline's answer (fallback_to_baseline defaults to true), marked as such.
    raw = client(anthropic_rollout, "user-1").chat.completions.with_raw_response.create(
        model="support", n=2, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-rampart-fallback"] == "candidate-error"
    assert raw.parse().choices[0].message.content
