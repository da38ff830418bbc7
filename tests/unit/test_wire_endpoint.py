"""App-server addresses: what parses, what is refused and why, and how a refused upgrade reads."""

from __future__ import annotations

import pytest

from codex_mcp.wire.endpoint import Endpoint, parse_endpoint, rejection_reason


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("unix:///run/codex/svc.sock", Endpoint("unix", path="/run/codex/svc.sock")),
        ("ws://127.0.0.1:4500", Endpoint("ws", host="127.0.0.1", port=4500)),
        ("ws://127.0.0.1:4500/", Endpoint("ws", host="127.0.0.1", port=4500)),
        ("ws://[::1]:4500", Endpoint("ws", host="::1", port=4500)),
    ],
)
def test_unix_and_ws_addresses_parse_and_read_back_as_given(url: str, expected: Endpoint) -> None:
    endpoint = parse_endpoint(url)

    assert endpoint == expected
    assert endpoint.url == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("unix://relative.sock", "absolute socket path"),
        ("ws://user:secret-pass@127.0.0.1:1", "must not carry credentials"),
        ("ws://127.0.0.1", "needs a host and a port"),
        ("ws://127.0.0.1:99999", "bad port"),
        ("ws://127.0.0.1:1/rpc?token=x", "without a path or query"),
        ("wss://host:443", "no TLS listener"),
        ("http://127.0.0.1:1", "starts with unix:// or ws://"),
    ],
)
def test_other_addresses_are_refused_saying_why_without_repeating_a_credential(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as caught:
        parse_endpoint(url)

    assert "secret-pass" not in str(caught.value)


def test_a_refused_upgrade_reads_as_its_likely_cause() -> None:
    assert rejection_reason(401, b"invalid websocket bearer token\n").startswith(
        "HTTP 401: invalid websocket bearer token; check the token"
    )
    assert "Origin header" in rejection_reason(403, b"")
    assert rejection_reason(404, b"x" * 1000).endswith(
        "this does not look like a codex app-server WebSocket listener"
    )
