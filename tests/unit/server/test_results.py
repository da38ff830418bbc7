"""Tool errors read `Error [CODE]: message` with paths and secrets redacted, in text and structure alike."""

from __future__ import annotations

import json

import mcp_types as types

from codex_mcp.errors import CodexMcpError, redact
from codex_mcp.server.results import failure, success


def test_an_error_result_has_the_code_in_text_and_structure_with_paths_redacted() -> None:
    result = failure(
        CodexMcpError("INVALID_ARGUMENT", "cwd: /home/me/secret/project is missing", field="cwd")
    )
    assert result.is_error
    text = result.content[0]
    assert isinstance(text, types.TextContent)
    assert text.text == "Error [INVALID_ARGUMENT]: cwd: <path> is missing"
    assert result.structured_content == {
        "error": {"code": "INVALID_ARGUMENT", "message": "cwd: <path> is missing", "field": "cwd"}
    }


def test_a_success_result_carries_the_same_json_as_text_and_structure() -> None:
    payload = {"sessionId": "sess_1", "status": "idle", "nested": {"ü": [1, 2]}}
    result = success(payload)
    assert not result.is_error
    text = result.content[0]
    assert isinstance(text, types.TextContent)
    assert json.loads(text.text) == payload
    assert result.structured_content == payload


def test_redaction_covers_posix_windows_and_unc_paths_and_api_keys() -> None:
    assert redact("open /var/lib/x.txt failed") == "open <path> failed"
    assert redact(r"C:\Users\me\file.txt") == "<path>"
    assert redact(r"\\server\share\dir") == "<path>"
    assert redact("key sk-abcdef1234567890 leaked") == "key <secret> leaked"
    assert redact("Bearer abc.def.ghijkl") == "<secret>"
    assert redact("no path here, just text/words") == "no path here, just text/words"
