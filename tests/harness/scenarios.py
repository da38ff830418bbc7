"""Scripted, stateless behaviour of the mock model.

Every decision is a pure function of one Responses API request body, so Codex's
retries, follow-up requests after tool calls and multi-turn conversations all
behave: the scenario comes from a ``scenario:<name>`` marker in the latest user
message, and the step within a turn is the number of ``function_call_output``
items that follow that message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, cast

from tests.harness.plans import PLAN_FAILED, PlanError, final_text, find_plan, next_call

SCENARIO_MARKER: Final = re.compile(r"scenario:([A-Za-z0-9_\-]+)")
DEFAULT_SCENARIO: Final = "plain"

PLAIN_TEXT: Final = "Hello from the mock model. This is a plain answer."
SHELL_COMMAND: Final = "echo hi > made.txt"
ESCALATE_JUSTIFICATION: Final = "The mock model needs to write made.txt outside the sandbox."
PATCH_FILE: Final = "patched.txt"
PATCH_LINE: Final = "patched by the mock model"
PATCH_COMMAND: Final = (
    f"apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: {PATCH_FILE}\n+{PATCH_LINE}\n*** End Patch\nEOF\n"
)
# `edit_shared`: a patch of SHARED_FILE (whose one line must be SHARED_LINE) and a new notes file,
# both with the prompt's `tag:<word>` in them, so sessions on one repository make distinct edits.
SHARED_FILE: Final = "shared.txt"
SHARED_LINE: Final = "base line"
TAG_MARKER: Final = re.compile(r"tag:([A-Za-z0-9_-]+)")
FINAL_AFTER_EDIT: Final = "Done: edited shared.txt."
REASONING_SUMMARY: Final = "Thinking about the answer step by step."
REASONING_ANSWER: Final = "The answer after reasoning is 42."
FINAL_AFTER_TOOL: Final = "Done: the command ran."
BACKGROUND_COMMAND: Final = "sleep 30"
FINAL_AFTER_BACKGROUND: Final = "Started a background command."
FINAL_AFTER_PATCH: Final = f"Done: created {PATCH_FILE}."
USER_INPUT_QUESTION_ID: Final = "color"
DEFAULT_STRUCTURED: Final[dict[str, object]] = {"status": "ok", "answer": "mock structured answer"}
SLOW_TEXT_PREFIX: Final = "slow chunk"
# The `echo` answer: this, then the latest user message as the request carries it (a steered
# prompt, say: the answer shows the model read it).
ECHO_PREFIX: Final = "Echo: "
# `bulk`: BULK_COMMANDS commands in batches of parallel calls, then a final answer of BULK_ANSWER_CHARS
# characters (BULK_ANSWER_LINE repeated); every BULK_FAIL_EVERY-th command exits with 3.
BULK_ANSWER_LINE: Final = "bulk answer line of the mock model, long enough to be a line.\n"
BULK_FAIL_EVERY: Final = 100
# Codex offers the tools of `[mcp_servers.codex-mcp]` to the model in this namespace ("-" becomes "_").
PLAN_NAMESPACE: Final = "mcp__codex_mcp"


@dataclass(frozen=True)
class ScenarioOptions:
    """Tunable sizes and timings of the scenarios."""

    slow_total_seconds: float = 8.0
    slow_chunks: int = 16
    noisy_lines: int = 150
    noisy_line_interval: float = 0.01
    text_chunk_size: int = 12
    bulk_commands: int = 500
    bulk_batch: int = 50
    bulk_answer_chars: int = 200_000


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event; ``delay`` is waited before it is sent."""

    event: str
    data: Mapping[str, object]
    delay: float = 0.0

    def encode(self) -> bytes:
        """Serialise as ``event: <type>\\ndata: <json>\\n\\n``."""
        payload = {"type": self.event, **self.data}
        return f"event: {self.event}\ndata: {json.dumps(payload)}\n\n".encode()


@dataclass(frozen=True)
class StreamReply:
    """A 200 ``text/event-stream`` answer; ``drop`` closes the socket after the events.

    ``hang`` keeps the socket open after the events, sending nothing more, until the server stops.
    """

    events: tuple[SseEvent, ...]
    drop: bool = False
    hang: bool = False


@dataclass(frozen=True)
class ErrorReply:
    """A non-streaming HTTP error answer."""

    status: int
    body: Mapping[str, object]


Reply = StreamReply | ErrorReply


@dataclass(frozen=True)
class Conversation:
    """What the mock needs to know about one request's ``input``."""

    scenario: str
    user_turn: int
    step: int
    last_user_text: str
    outputs: tuple[str, ...] = field(default_factory=tuple)


def _as_list(value: object) -> list[object]:
    return list(cast(list[object], value)) if isinstance(value, list) else []


def _as_map(value: object) -> Mapping[str, object]:
    if isinstance(value, Mapping):
        return cast(Mapping[str, object], value)
    return {}


def message_text(item: Mapping[str, object]) -> str:
    """Concatenate the text parts of a Responses API message item."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in _as_list(content):
        text = _as_map(part).get("text")
        if isinstance(text, str):
            parts.append(text)
    return "".join(parts)


def _is_user_message(item: Mapping[str, object]) -> bool:
    return item.get("type", "message") == "message" and item.get("role") == "user"


def is_injected_context(text: str) -> bool:
    """Whether a user-role message is context Codex injected (environment, AGENTS.md, aborts)."""
    stripped = text.strip()
    return (stripped.startswith("<") and stripped.endswith(">")) or stripped.startswith("# AGENTS.md")


def analyse(body: Mapping[str, object]) -> Conversation:
    """Find the scenario, the user turn number and the tool step of a request."""
    items = [_as_map(item) for item in _as_list(body.get("input"))]
    prompts = [
        i
        for i, item in enumerate(items)
        if _is_user_message(item) and not is_injected_context(message_text(item))
    ]
    if not prompts:
        return Conversation(DEFAULT_SCENARIO, 0, 0, "")
    last = prompts[-1]
    text = message_text(items[last])
    found = SCENARIO_MARKER.search(text)
    outputs = tuple(
        _output_text(item.get("output"))
        for item in items[last + 1 :]
        if item.get("type") in ("function_call_output", "custom_tool_call_output")
    )
    return Conversation(
        found.group(1) if found else DEFAULT_SCENARIO, len(prompts), len(outputs), text, outputs
    )


def _output_text(output: object) -> str:
    if isinstance(output, str):
        return output
    return "".join(message_text({"content": [part]}) for part in _as_list(output))


# --- event builders ---------------------------------------------------------


def usage(input_tokens: int = 100, output_tokens: int = 20, reasoning_tokens: int = 0) -> dict[str, object]:
    """A Responses API usage block."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


def created(response_id: str) -> SseEvent:
    """``response.created``."""
    return SseEvent("response.created", {"response": {"id": response_id}})


def completed(response_id: str, reasoning_tokens: int = 0) -> SseEvent:
    """``response.completed`` with usage."""
    return SseEvent(
        "response.completed",
        {"response": {"id": response_id, "usage": usage(reasoning_tokens=reasoning_tokens)}},
    )


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def message_events(
    item_id: str,
    chunks: Sequence[str],
    output_index: int = 0,
    delay: float = 0.0,
) -> list[SseEvent]:
    """An assistant message streamed as ``output_text.delta`` events."""
    events = [
        SseEvent(
            "response.output_item.added",
            {
                "output_index": output_index,
                "item": {"type": "message", "role": "assistant", "id": item_id, "content": []},
            },
        )
    ]
    events += [
        SseEvent(
            "response.output_text.delta",
            {"item_id": item_id, "output_index": output_index, "content_index": 0, "delta": chunk},
            delay,
        )
        for chunk in chunks
    ]
    events.append(
        SseEvent(
            "response.output_item.done",
            {
                "output_index": output_index,
                "item": {
                    "type": "message",
                    "role": "assistant",
                    "id": item_id,
                    "content": [
                        {"type": "output_text", "text": "".join(chunks), "annotations": list[object]()}
                    ],
                },
            },
        )
    )
    return events


def function_call_events(
    call_id: str,
    name: str,
    arguments: Mapping[str, object],
    output_index: int = 0,
    namespace: str | None = None,
) -> list[SseEvent]:
    """A complete ``function_call`` output item (``namespace`` for a tool Codex offers in one: MCP tools)."""
    item: dict[str, object] = {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(arguments),
    }
    if namespace is not None:
        item["namespace"] = namespace
    return [
        SseEvent(
            "response.output_item.added", {"output_index": output_index, "item": {**item, "arguments": ""}}
        ),
        SseEvent("response.output_item.done", {"output_index": output_index, "item": item}),
    ]


def reasoning_events(item_id: str, summary: str, output_index: int = 0) -> list[SseEvent]:
    """A reasoning item whose summary text is streamed."""
    return [
        SseEvent(
            "response.output_item.added",
            {"output_index": output_index, "item": {"type": "reasoning", "id": item_id, "summary": []}},
        ),
        SseEvent(
            "response.reasoning_summary_part.added",
            {
                "item_id": item_id,
                "output_index": output_index,
                "summary_index": 0,
                "part": {"type": "summary_text", "text": ""},
            },
        ),
        *[
            SseEvent(
                "response.reasoning_summary_text.delta",
                {"item_id": item_id, "output_index": output_index, "summary_index": 0, "delta": chunk},
            )
            for chunk in _chunks(summary, 10)
        ],
        SseEvent(
            "response.output_item.done",
            {
                "output_index": output_index,
                "item": {
                    "type": "reasoning",
                    "id": item_id,
                    "summary": [{"type": "summary_text", "text": summary}],
                },
            },
        ),
    ]


# --- scenarios --------------------------------------------------------------


def _respond(response_id: str, body: list[SseEvent], reasoning_tokens: int = 0) -> StreamReply:
    return StreamReply((created(response_id), *body, completed(response_id, reasoning_tokens)))


def _answer(rid: str, text: str, options: ScenarioOptions) -> StreamReply:
    return _respond(rid, message_events(f"msg_{rid}", _chunks(text, options.text_chunk_size)))


@dataclass(frozen=True)
class ToolStep:
    """A scenario that calls one tool, then answers ``final_text`` once the output is back."""

    name: str
    arguments: Mapping[str, object]
    final_text: str


def tool_step(conv: Conversation, options: ScenarioOptions) -> ToolStep | None:
    """The tool call of a tool-using scenario, or None for the others."""
    match conv.scenario:
        case "shell":
            return ToolStep("exec_command", {"cmd": SHELL_COMMAND}, FINAL_AFTER_TOOL)
        case "escalate":
            arguments = {
                "cmd": SHELL_COMMAND,
                "sandbox_permissions": "require_escalated",
                "justification": ESCALATE_JUSTIFICATION,
            }
            return ToolStep("exec_command", arguments, FINAL_AFTER_TOOL)
        case "patch":
            return ToolStep("exec_command", {"cmd": PATCH_COMMAND}, FINAL_AFTER_PATCH)
        case "edit_shared":
            found = TAG_MARKER.search(conv.last_user_text)
            return ToolStep(
                "exec_command", {"cmd": edit_command(found.group(1) if found else "none")}, FINAL_AFTER_EDIT
            )
        case "noisy":
            # A pause per line makes Codex stream outputDelta notifications instead of one blob.
            pause = f"; sleep {options.noisy_line_interval}" if options.noisy_line_interval > 0 else ""
            cmd = f'for i in $(seq 1 {options.noisy_lines}); do echo "noise line $i"{pause}; done'
            return ToolStep("exec_command", {"cmd": cmd}, FINAL_AFTER_TOOL)
        case "background":
            arguments = {"cmd": BACKGROUND_COMMAND, "yield_time_ms": 250}
            return ToolStep("exec_command", arguments, FINAL_AFTER_BACKGROUND)
        case "user_input":
            answer = conv.outputs[-1] if conv.outputs else ""
            arguments = {"questions": [user_input_question()]}
            return ToolStep("request_user_input", arguments, f"You answered: {answer}")
        case _:
            return None


def edit_command(tag: str) -> str:
    """The `edit_shared` patch for `tag`: SHARED_FILE's line replaced, `notes-<tag>.txt` added (2 lines)."""
    return (
        "apply_patch <<'EOF'\n*** Begin Patch\n"
        f"*** Update File: {SHARED_FILE}\n@@\n-{SHARED_LINE}\n+edited by {tag}\n"
        f"*** Add File: notes-{tag}.txt\n+notes of {tag}\n+second line\n"
        "*** End Patch\nEOF\n"
    )


def structured_instance(schema: Mapping[str, object]) -> object:
    """Build a small value satisfying a simple JSON schema (objects, scalars, enums)."""
    enum = _as_list(schema.get("enum"))
    if enum:
        return enum[0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    kinds = [k for k in _as_list(kind) if k != "null"]
    if kinds:
        kind = kinds[0]
    if kind == "object" or "properties" in schema:
        props = _as_map(schema.get("properties"))
        return {key: structured_instance(_as_map(sub)) for key, sub in props.items()}
    scalars: dict[object, object] = {"string": "mock", "integer": 1, "number": 1.5, "boolean": True}
    if kind == "array":
        return []
    return scalars.get(kind)


def _structured_text(body: Mapping[str, object]) -> str:
    fmt = _as_map(_as_map(body.get("text")).get("format"))
    schema = _as_map(fmt.get("schema"))
    value = structured_instance(schema) if schema else DEFAULT_STRUCTURED
    return json.dumps(value)


def decide(body: Mapping[str, object], options: ScenarioOptions | None = None) -> Reply:
    """Choose the whole reply to one ``POST /v1/responses`` request."""
    opts = options or ScenarioOptions()
    conv = analyse(body)
    rid = f"resp_{conv.scenario}_{conv.user_turn}_{conv.step}"
    step = tool_step(conv, opts)
    if step is not None:
        if conv.step == 0:
            call_id = f"call_{conv.scenario}_{conv.user_turn}"
            return _respond(rid, function_call_events(call_id, step.name, step.arguments))
        return _answer(rid, step.final_text, opts)
    match conv.scenario:
        case "plan":
            return _follow_plan(rid, conv, opts)
        case "bulk":
            return _bulk(rid, conv, opts)
        case "structured":
            return _answer(rid, _structured_text(body), opts)
        case "echo":
            return _answer(rid, f"{ECHO_PREFIX}{conv.last_user_text}", opts)
        case "slow":
            count = max(opts.slow_chunks, 1)
            chunks = [f"{SLOW_TEXT_PREFIX} {i}. " for i in range(count)]
            return _respond(rid, message_events(f"msg_{rid}", chunks, delay=opts.slow_total_seconds / count))
        case "reasoning":
            events = reasoning_events(f"rs_{rid}", REASONING_SUMMARY)
            events += message_events(f"msg_{rid}", _chunks(REASONING_ANSWER, opts.text_chunk_size), 1)
            return _respond(rid, events, reasoning_tokens=7)
        case "fail":
            error = {"code": "server_error", "message": "mock model failure"}
            failed = SseEvent("response.failed", {"response": {"id": rid, "error": error}})
            return StreamReply((created(rid), failed))
        case "http500":
            error = {"message": "mock internal error", "type": "server_error", "code": None}
            return ErrorReply(500, {"error": error})
        case "drop":
            # Created, item added and one delta; then the socket closes without response.completed.
            events = message_events(f"msg_{rid}", ["This answer is cut "])[:2]
            return StreamReply((created(rid), *events), drop=True)
        case "hang":
            # Created, item added and one delta; then silence on an open socket.
            events = message_events(f"msg_{rid}", ["This answer stops here "])[:2]
            return StreamReply((created(rid), *events), hang=True)
        case _:
            return _answer(rid, PLAIN_TEXT, opts)


def bulk_command(index: int) -> str:
    """The `bulk` scenario's command number `index` (every BULK_FAIL_EVERY-th exits with 3)."""
    fails = index % BULK_FAIL_EVERY == BULK_FAIL_EVERY - 1
    return f"echo bulk {index}" + ("; exit 3" if fails else "")


def bulk_answer(chars: int) -> str:
    """The `bulk` scenario's final answer: exactly `chars` characters."""
    return (BULK_ANSWER_LINE * (chars // len(BULK_ANSWER_LINE) + 1))[:chars]


def _bulk(rid: str, conv: Conversation, options: ScenarioOptions) -> StreamReply:
    """`bulk`: the next batch of commands (parallel calls in one response), then the long answer."""
    done = conv.step
    if done < options.bulk_commands:
        batch = range(done, min(done + options.bulk_batch, options.bulk_commands))
        events = [
            event
            for position, index in enumerate(batch)
            for event in function_call_events(
                f"call_bulk_{conv.user_turn}_{index}", "exec_command", {"cmd": bulk_command(index)}, position
            )
        ]
        return _respond(rid, events)
    return _respond(rid, message_events(f"msg_{rid}", _chunks(bulk_answer(options.bulk_answer_chars), 8192)))


def _follow_plan(rid: str, conv: Conversation, options: ScenarioOptions) -> StreamReply:
    """The next call of the prompt's plan (:mod:`tests.harness.plans`) to our MCP tools, or the final text."""
    try:
        plan = find_plan(conv.last_user_text) or []
        planned = next_call(plan, conv.outputs)
    except PlanError as exc:
        return _answer(rid, f"{PLAN_FAILED}: {exc}", options)
    if planned is None:
        return _answer(rid, final_text(conv.outputs), options)
    call_id = f"call_plan_{conv.user_turn}_{conv.step}"
    arguments = dict(planned.arguments)
    return _respond(rid, function_call_events(call_id, planned.tool, arguments, namespace=PLAN_NAMESPACE))


def user_input_question() -> dict[str, object]:
    """The single question the ``user_input`` scenario asks."""
    return {
        "id": USER_INPUT_QUESTION_ID,
        "header": "Color",
        "question": "Which color should the mock use?",
        "options": [
            {"label": "Blue (Recommended)", "description": "A calm color."},
            {"label": "Red", "description": "A loud color."},
        ],
    }


SCENARIOS: Final = (
    "plain",
    "shell",
    "escalate",
    "patch",
    "user_input",
    "structured",
    "slow",
    "echo",
    "reasoning",
    "noisy",
    "background",
    "bulk",
    "fail",
    "http500",
    "drop",
)
# Also answered, but needing a `<plan>` in the prompt (tests.harness.plans): "plan".
# Also answered, but not in SCENARIOS (whose streams all end): "hang".
