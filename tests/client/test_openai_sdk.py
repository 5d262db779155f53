"""The official OpenAI Python SDK, pointed at rampart, non-streaming and streaming."""
import hashlib

from openai import OpenAI


def client(gateway, key=None, cls=None):
    headers = {}
    if key:
        headers["x-rampart-routing-key"] = key
    if cls:
        headers["x-rampart-class"] = cls
    return OpenAI(base_url=gateway["url"] + "/v1", api_key="unused", default_headers=headers, max_retries=0)


def bucket(salt: str, key: str) -> int:
    """DESIGN.md's sticky bucket, computed independently of rampart."""
    return int.from_bytes(hashlib.sha256(f"{salt}.{key}".encode()).digest()[:8], "big") % 10000


def test_non_streaming_content_usage_and_headers(gateway):
    raw = client(gateway, key="user-42").chat.completions.with_raw_response.create(
        model="support",
        messages=[{"role": "user", "content": "I am still waiting on my card?"}],
    )
    completion = raw.parse()
    text = completion.choices[0].message.content
    assert isinstance(text, str) and len(text) > 20
    assert "card" in text.lower()
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert raw.headers["x-rampart-request-id"].startswith("req_")
    assert raw.headers["x-rampart-stage"] == "canary-5"
    expected = "canary" if bucket("support-v2", "user-42") < 500 else "control"
    assert raw.headers["x-rampart-cohort"] == expected
    assert raw.headers["x-rampart-variant"] == ("v2" if expected == "canary" else "v1")


def test_streaming_content_usage_and_headers(gateway):
    c = client(gateway, key="user-7", cls="card_arrival")
    with c.chat.completions.with_streaming_response.create(
        model="support",
        messages=[{"role": "user", "content": "Can I track my card while it is in the process of delivery?"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-rampart-request-id"].startswith("req_")
        assert response.headers["x-rampart-cohort"] in ("control", "canary")
        chunks = list(response.parse())
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert "card" in text.lower()
    usage = [ch.usage for ch in chunks if ch.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0


def test_cohorts_match_the_formula_for_many_users(gateway):
    c = client(gateway)
    for i in range(150):
        key = f"sdk-user-{i}"
        raw = c.chat.completions.with_raw_response.create(
            model="support",
            messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-rampart-routing-key": key},
        )
        expected = "canary" if bucket("support-v2", key) < 500 else "control"
        assert raw.headers["x-rampart-cohort"] == expected, key


def test_errors_come_back_in_openai_shape(gateway):
    import openai
    import pytest

    with pytest.raises(openai.NotFoundError) as err:
        client(gateway).chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    message = str(err.value)
    assert "unknown route `nope`" in message
    # Route names are configuration, not something any client may enumerate.
    assert "support" not in message
