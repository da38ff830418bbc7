"""Recorded `codex exec --json` runs map onto the app-server notifications a session consumes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from codex_mcp.backends.exec_mapping import ExecTurnMapper, Notification
from codex_mcp.sessions.ingest import ingest_notification
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.wire.exec_events import ExecEvent, parse_event

TRANSCRIPTS = Path(__file__).resolve().parents[2] / "contract" / "transcripts" / "exec"
TURN = "turn-1"
PLAIN_TEXT = "Hello from the mock model. This is a plain answer."


@dataclass
class Run:
    """One recorded child: its argv, exit code, stdout events and stderr lines."""

    name: str
    argv: list[str]
    exit_code: int
    events: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    stderr: list[str] = field(default_factory=list[str])

    @property
    def resumed_thread(self) -> str | None:
        """The thread id a `codex exec resume` run asked for."""
        if "resume" not in self.argv:
            return None
        return self.argv[self.argv.index("--") + 1] if "--" in self.argv else self.argv[-2]


def _runs(path: Path) -> list[Run]:
    runs: list[Run] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = cast(dict[str, Any], json.loads(line))
        msg = record["msg"]
        if record["dir"] == "header":
            runs.append(Run(f"{path.stem}#{len(runs)}", list(msg["argv"]), int(msg["exit_code"])))
        elif record["dir"] == "in":
            runs[-1].events.append(cast(dict[str, Any], msg))
        elif record["dir"] == "stderr":
            runs[-1].stderr.append(str(msg))
    return runs


ALL_RUNS = [run for path in sorted(TRANSCRIPTS.glob("*.jsonl")) for run in _runs(path)]


def _run(name: str) -> Run:
    return next(run for run in ALL_RUNS if run.name == name)


def _map_run(run: Run) -> tuple[ExecTurnMapper, list[Notification]]:
    """What run_exec_turn does with a recorded child: map each line, then end at its exit."""
    mapper = ExecTurnMapper(run.resumed_thread, TURN)
    notes: list[Notification] = []
    for raw in run.events:
        event = parse_event(json.dumps(raw))
        assert isinstance(event, ExecEvent), event
        notes += mapper.map(event)
    notes += mapper.finish_without_completion(run.exit_code, "\n".join(run.stderr))
    return mapper, notes


def _methods(notes: list[Notification]) -> list[str]:
    return [method for method, _ in notes]


def _completed_items(notes: list[Notification], item_type: str) -> list[dict[str, Any]]:
    return [p["item"] for m, p in notes if m == "item/completed" and p["item"]["type"] == item_type]


def test_the_transcripts_hold_the_runs_these_tests_rely_on() -> None:
    names = {run.name for run in ALL_RUNS}
    expected = {"plain#0", "http500#0", "drop#0", "shell#0", "patch#0", "reasoning#0", "resume#1"}
    assert expected <= names


@pytest.mark.parametrize("run", ALL_RUNS, ids=lambda run: run.name)
def test_every_recorded_run_ends_with_exactly_one_turn_completed_and_captures_its_thread_id(run: Run) -> None:
    mapper, notes = _map_run(run)

    methods = _methods(notes)
    assert methods.count("turn/completed") == 1
    assert methods[-1] == "turn/completed"
    started = next(e["thread_id"] for e in run.events if e["type"] == "thread.started")
    assert mapper.thread_id == started
    assert {params["threadId"] for _, params in notes} == {started}
    turn = notes[-1][1]["turn"]
    assert turn["id"] == TURN
    assert turn["status"] == ("completed" if run.exit_code == 0 else "failed")
    assert mapper.completed
    assert mapper.warnings == []


@pytest.mark.parametrize("run", ALL_RUNS, ids=lambda run: run.name)
def test_every_item_type_becomes_camel_case_and_keeps_its_original_fields(run: Run) -> None:
    _, notes = _map_run(run)

    originals = [e["item"] for e in run.events if e["type"].startswith("item.")]
    items = [p["item"] for m, p in notes if m.startswith("item/")]
    assert len(items) == len(originals)
    for original, item in zip(originals, items, strict=True):
        assert "_" not in item["type"]
        assert {k: v for k, v in item.items() if k not in ("type", "status")}.items() >= {
            k: v for k, v in original.items() if k not in ("type", "status")
        }.items()


def test_a_plain_turn_maps_to_thread_and_turn_start_the_agent_message_usage_and_completion() -> None:
    mapper, notes = _map_run(_run("plain#0"))

    assert _methods(notes) == [
        "thread/started",
        "item/completed",  # the "model metadata not found" warning item comes before turn.started
        "turn/started",
        "item/completed",
        "thread/tokenUsage/updated",
        "turn/completed",
    ]
    thread_id = mapper.thread_id
    assert notes[0][1]["thread"] == {"id": thread_id}
    assert notes[2][1]["turn"] == {"id": TURN, "items": [], "status": "inProgress", "error": None}
    [message] = _completed_items(notes, "agentMessage")
    assert message["text"] == PLAIN_TEXT
    assert mapper.last_agent_message == PLAIN_TEXT
    usage = notes[4][1]
    assert usage["turnId"] == TURN
    assert usage["tokenUsage"]["total"] == {
        "inputTokens": 100,
        "cachedInputTokens": 0,
        "cacheWriteInputTokens": 0,
        "outputTokens": 20,
        "reasoningOutputTokens": 0,
        "totalTokens": 120,
    }
    assert usage["tokenUsage"]["last"] == usage["tokenUsage"]["total"]
    assert usage["usage"]["input_tokens"] == 100
    assert notes[-1][1]["turn"] == {"id": TURN, "items": [], "status": "completed", "error": None}


def test_reasoning_tokens_and_the_reasoning_item_are_mapped() -> None:
    _, notes = _map_run(_run("reasoning#0"))

    [reasoning] = _completed_items(notes, "reasoning")
    assert reasoning["text"] == "Thinking about the answer step by step."
    assert reasoning["summary"] == [reasoning["text"]]
    [usage] = [p for m, p in notes if m == "thread/tokenUsage/updated"]
    assert usage["tokenUsage"]["total"]["reasoningOutputTokens"] == 7


def test_a_command_execution_gets_app_server_keys_and_statuses_next_to_the_exec_ones() -> None:
    _, notes = _map_run(_run("shell#0"))

    [started] = [p["item"] for m, p in notes if m == "item/started"]
    [done] = _completed_items(notes, "commandExecution")
    assert started["status"] == "inProgress"
    assert started["exitCode"] is None
    assert done["command"] == "/bin/bash -lc 'echo hi > made.txt'"
    assert done["aggregatedOutput"] == done["aggregated_output"] == ""
    assert done["exitCode"] == done["exit_code"] == 0
    assert done["status"] == "completed"


def test_a_file_change_keeps_its_changes() -> None:
    _, notes = _map_run(_run("patch#0"))

    [change] = _completed_items(notes, "fileChange")
    assert change["changes"] == [{"path": "/workspace/patched.txt", "kind": "add"}]
    assert change["status"] == "completed"


@pytest.mark.parametrize("name", ["http500#0", "drop#0"])
def test_a_failed_turn_maps_to_one_error_then_a_failed_turn_completed(name: str) -> None:
    run = _run(name)
    _, notes = _map_run(run)

    message = next(e["error"]["message"] for e in run.events if e["type"] == "turn.failed")
    errors = [p for m, p in notes if m == "error"]
    assert len(errors) == 1  # exec repeats the message in turn.failed: said once
    assert errors[0]["willRetry"] is False
    assert errors[0]["error"] == {"message": message}
    assert errors[0]["turnId"] == TURN
    assert _methods(notes)[-2:] == ["error", "turn/completed"]
    assert notes[-1][1]["turn"]["status"] == "failed"
    assert notes[-1][1]["turn"]["error"] == {"message": message}


def test_a_resumed_run_keeps_the_thread_it_asked_for() -> None:
    first, second = _run("resume#0"), _run("resume#1")
    first_mapper, _ = _map_run(first)

    assert second.resumed_thread == first_mapper.thread_id
    mapper, notes = _map_run(second)
    assert mapper.thread_id == first_mapper.thread_id
    assert mapper.warnings == []
    [usage] = [p for m, p in notes if m == "thread/tokenUsage/updated"]
    # exec reports the thread's cumulative usage.
    assert usage["tokenUsage"]["total"]["inputTokens"] == 200


def test_a_resume_that_starts_another_thread_is_reported_in_warnings() -> None:
    mapper = ExecTurnMapper("thread-asked", TURN)

    mapper.map_raw({"type": "thread.started", "thread_id": "thread-new"})

    assert mapper.thread_id == "thread-new"
    assert len(mapper.warnings) == 1
    assert "thread-asked" in mapper.warnings[0]
    assert "thread-new" in mapper.warnings[0]


def test_an_error_before_turn_started_is_mapped_with_the_turn_id() -> None:
    mapper = ExecTurnMapper(None, TURN)

    notes = mapper.map_raw({"type": "error", "message": "config problem"})

    assert notes == [
        (
            "error",
            {
                "message": "config problem",
                "threadId": None,
                "turnId": TURN,
                "willRetry": False,
                "error": {"message": "config problem"},
            },
        )
    ]
    assert not mapper.completed


@pytest.mark.parametrize(
    ("message", "will_retry"),
    [
        ("Reconnecting... 2/5 (stream disconnected before completion)", True),
        ("stream disconnected - retrying sampling request (1/5 in 200ms)...", True),
        ("reconnecting: live sideband transport lost", True),
        ("We're currently experiencing high demand, which may cause temporary errors.", False),
        ("stream disconnected before completion: stream closed before response.completed", False),
    ],
)
def test_an_error_event_will_retry_only_when_it_reads_like_a_reconnect(
    message: str, will_retry: bool
) -> None:
    [(method, params)] = ExecTurnMapper("t", TURN).map_raw({"type": "error", "message": message})

    assert method == "error"
    assert params["willRetry"] is will_retry


def test_a_reconnect_error_does_not_hide_the_failure_that_follows() -> None:
    mapper = ExecTurnMapper("t", TURN)
    mapper.map_raw({"type": "error", "message": "Reconnecting... 1/5"})

    notes = mapper.map_raw({"type": "turn.failed", "error": {"message": "Reconnecting... 1/5"}})

    assert _methods(notes) == ["error", "turn/completed"]
    assert notes[0][1]["willRetry"] is False


def test_other_item_types_get_their_app_server_names_and_camel_case_copies() -> None:
    mapper = ExecTurnMapper("t", TURN)
    items = [
        {
            "id": "ws_1",
            "type": "web_search",
            "query": "anyio",
            "action": {"type": "search", "query": "anyio"},
        },
        {
            "id": "item_3",
            "type": "mcp_tool_call",
            "server": "echo",
            "tool": "echo",
            "arguments": {"text": "hi"},
            "result": {"content": [{"type": "text", "text": "hi"}], "structured_content": {"text": "hi"}},
            "error": None,
            "status": "in_progress",
        },
        {"id": "item_4", "type": "todo_list", "items": [{"text": "a", "completed": True}]},
        {"id": "item_5", "type": "collab_tool_call", "sender_thread_id": "t", "status": "completed"},
        {"id": "item_6", "type": "error", "message": "a warning"},
        {"id": "item_7", "type": "some_future_item", "new_field": 1},
    ]

    converted = [mapper.map_raw({"type": "item.updated", "item": item})[0] for item in items]

    assert {m for m, _ in converted} == {"item/updated"}
    got = [p["item"] for _, p in converted]
    assert [i["type"] for i in got] == [
        "webSearch",
        "mcpToolCall",
        "todoList",
        "collabAgentToolCall",
        "error",
        "someFutureItem",
    ]
    assert got[1]["status"] == "inProgress"
    assert got[1]["result"]["structuredContent"] == got[1]["result"]["structured_content"] == {"text": "hi"}
    assert got[3]["senderThreadId"] == "t"
    assert got[5]["newField"] == 1


def test_a_second_turn_end_is_ignored() -> None:
    mapper = ExecTurnMapper("t", TURN)
    first = mapper.map_raw({"type": "turn.completed", "usage": {"input_tokens": 1, "output_tokens": 2}})

    assert _methods(first) == ["thread/tokenUsage/updated", "turn/completed"]
    assert mapper.map_raw({"type": "turn.failed", "error": {"message": "late"}}) == []
    assert mapper.map_raw({"type": "turn.completed", "usage": {}}) == []
    assert mapper.interrupted() == []
    assert mapper.finish_without_completion(1, "boom") == []
    assert mapper.status == "completed"


def test_an_exit_without_a_turn_end_fails_the_turn_with_the_redacted_stderr_tail() -> None:
    mapper = ExecTurnMapper("t", TURN)
    mapper.map_raw({"type": "turn.started"})

    notes = mapper.finish_without_completion(
        3, "loading /home/me/.codex/config.toml\nkey sk-abcdefghijklmnop\n"
    )

    assert _methods(notes) == ["error", "turn/completed"]
    message = notes[0][1]["error"]["message"]
    assert message.startswith("codex exec exited with code 3 before the turn completed; stderr: ")
    assert "loading <path>" in message
    assert "<secret>" in message
    assert "sk-abc" not in message
    assert notes[0][1]["willRetry"] is False
    assert notes[1][1]["turn"]["status"] == "failed"
    assert notes[1][1]["turn"]["error"] == {"message": message}


def test_a_child_killed_by_a_signal_says_which() -> None:
    notes = ExecTurnMapper("t", TURN).finish_without_completion(-9, "")

    assert notes[0][1]["error"]["message"] == "codex exec was killed by SIGKILL before the turn completed"


def test_an_interrupted_turn_completes_once_with_status_interrupted() -> None:
    mapper = ExecTurnMapper("t", TURN)

    notes = mapper.interrupted()

    assert notes == [("turn/completed", {"threadId": "t", "turn": _turn("interrupted")})]
    assert mapper.interrupted() == []
    assert mapper.status == "interrupted"


def _turn(status: str) -> dict[str, Any]:
    return {"id": TURN, "items": [], "status": status, "error": None}


def _session() -> Session:
    session = Session(
        session_id="sess_exec",
        thread_id="thread",
        settings=ThreadSettings(approval_policy="never", sandbox="read-only", cwd="/w"),
        connection_key="exec",
    )
    session.begin_turn(has_output_schema=False)
    return session


def test_a_mapped_plain_run_gives_a_session_its_text_and_usage() -> None:
    session = _session()

    for method, params in _map_run(_run("plain#0"))[1]:
        ingest_notification(session, method, params)

    assert session.status == "idle"
    assert session.result is not None
    assert session.result["text"] == PLAIN_TEXT
    assert session.result["turnId"] == TURN
    assert session.tokens.total_tokens == 120


def test_a_mapped_failed_run_leaves_the_session_in_error_with_the_message() -> None:
    session = _session()

    for method, params in _map_run(_run("http500#0"))[1]:
        ingest_notification(session, method, params)

    assert session.status == "error"
    assert session.result is not None
    assert session.result["status"] == "failed"
    assert "high demand" in session.result["error"]["message"]
