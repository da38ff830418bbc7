"""Our requests to `codex app-server`: one builder per request we send, over the generated params
model, typed by the generated response model the connection's `call` returns.

The params are not validated here: Codex judges the values (its refusal becomes the tool error, as
for any request), and only the fields given are sent, so a model default never leaks out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from codex_mcp._generated import app_server as app
from codex_mcp._generated import methods

R = TypeVar("R", bound=BaseModel)

# Our sandbox names as the turn's sandbox policy says them.
_SANDBOX_POLICY: dict[str, dict[str, str]] = {
    "read-only": {"type": "readOnly"},
    "workspace-write": {"type": "workspaceWrite"},
    "danger-full-access": {"type": "dangerFullAccess"},
}


@dataclass(frozen=True, slots=True)
class ClientCall(Generic[R]):
    """One request: its method, its params, and the model its result parses into."""

    method: str
    params: BaseModel
    response: type[R]


def _call(method: str, params: type[BaseModel], response: type[R], fields: dict[str, Any]) -> ClientCall[R]:
    given = {name: value for name, value in fields.items() if value is not None}
    return ClientCall(method, params.model_construct(**given), response)


def thread_start(
    *,
    cwd: str,
    approval_policy: str,
    sandbox: str,
    model: str | None = None,
    config: dict[str, Any] | None = None,
    base_instructions: str | None = None,
    developer_instructions: str | None = None,
    personality: str | None = None,
    ephemeral: bool = False,
) -> ClientCall[app.ThreadStartResponse]:
    """`thread/start`: a new thread."""
    fields = {
        "cwd": cwd,
        "approvalPolicy": approval_policy,
        "sandbox": sandbox,
        "model": model,
        "config": config,
        "baseInstructions": base_instructions,
        "developerInstructions": developer_instructions,
        "personality": personality,
        "ephemeral": ephemeral or None,
    }
    return _call(methods.THREAD_START, app.ThreadStartParams, app.ThreadStartResponse, fields)


def thread_resume(
    *,
    thread_id: str,
    cwd: str,
    approval_policy: str,
    sandbox: str,
    model: str | None = None,
    config: dict[str, Any] | None = None,
) -> ClientCall[app.ThreadResumeResponse]:
    """`thread/resume`: a stored thread loaded again."""
    fields = {
        "threadId": thread_id,
        "cwd": cwd,
        "approvalPolicy": approval_policy,
        "sandbox": sandbox,
        "model": model,
        "config": config,
    }
    return _call(methods.THREAD_RESUME, app.ThreadResumeParams, app.ThreadResumeResponse, fields)


def thread_fork(
    *, thread_id: str, config: dict[str, Any] | None = None
) -> ClientCall[app.ThreadForkResponse]:
    """`thread/fork`: a new thread from this one's history."""
    fields = {"threadId": thread_id, "config": config}
    return _call(methods.THREAD_FORK, app.ThreadForkParams, app.ThreadForkResponse, fields)


def background_terminals_clean(*, thread_id: str) -> ClientCall[app.ThreadBackgroundTerminalsCleanResponse]:
    """`thread/backgroundTerminals/clean`: stop the thread's background terminals."""
    return _call(
        methods.THREAD_BACKGROUND_TERMINALS_CLEAN,
        app.ThreadBackgroundTerminalsCleanParams,
        app.ThreadBackgroundTerminalsCleanResponse,
        {"threadId": thread_id},
    )


def turn_start(
    *,
    thread_id: str,
    prompt: str,
    images: list[str],
    effort: str | None = None,
    summary: str | None = None,
    personality: str | None = None,
    output_schema: dict[str, Any] | None = None,
    model: str | None = None,
    approval_policy: str | None = None,
    cwd: str | None = None,
    sandbox: str | None = None,
    collaboration_mode: str | None = None,
    collaboration_model: str | None = None,
) -> ClientCall[app.TurnStartResponse]:
    """`turn/start`: the prompt (and local images) as the next turn."""
    fields: dict[str, Any] = {
        "threadId": thread_id,
        "input": _user_input(prompt, images),
        "effort": effort,
        "summary": summary,
        "personality": personality,
        "outputSchema": output_schema,
        "model": model,
        "approvalPolicy": approval_policy,
        "cwd": cwd,
        "sandboxPolicy": _SANDBOX_POLICY.get(sandbox) if sandbox else None,
    }
    if collaboration_mode is not None:
        fields["collaborationMode"] = {"mode": collaboration_mode, "settings": {"model": collaboration_model}}
    return _call(methods.TURN_START, app.TurnStartParams, app.TurnStartResponse, fields)


def _user_input(prompt: str, images: list[str]) -> list[dict[str, Any]]:
    """The prompt and local images as Codex's `UserInput` items."""
    inputs: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    return inputs + [{"type": "localImage", "path": path} for path in images]


def turn_steer(
    *, thread_id: str, expected_turn_id: str, prompt: str, images: list[str], client_message_id: str
) -> ClientCall[app.TurnSteerResponse]:
    """`turn/steer`: the prompt (and local images) added to the running turn `expected_turn_id`
    (Codex refuses it when another turn, or none, runs); `client_message_id` becomes the `clientId`
    of the userMessage item Codex shows it as."""
    fields = {
        "threadId": thread_id,
        "expectedTurnId": expected_turn_id,
        "input": _user_input(prompt, images),
        "clientUserMessageId": client_message_id,
    }
    return _call(methods.TURN_STEER, app.TurnSteerParams, app.TurnSteerResponse, fields)


def turn_interrupt(*, thread_id: str, turn_id: str) -> ClientCall[app.TurnInterruptResponse]:
    """`turn/interrupt`: stop the running turn."""
    fields = {"threadId": thread_id, "turnId": turn_id}
    return _call(methods.TURN_INTERRUPT, app.TurnInterruptParams, app.TurnInterruptResponse, fields)


def thread_loaded_list() -> ClientCall[app.ThreadLoadedListResponse]:
    """`thread/loaded/list`: the threads this app-server holds in memory."""
    return _call(methods.THREAD_LOADED_LIST, app.ThreadLoadedListParams, app.ThreadLoadedListResponse, {})


def thread_read(*, thread_id: str, include_turns: bool = False) -> ClientCall[app.ThreadReadResponse]:
    """`thread/read`: one thread's metadata (its status among it), and its turns if asked."""
    fields = {"threadId": thread_id, "includeTurns": include_turns or None}
    return _call(methods.THREAD_READ, app.ThreadReadParams, app.ThreadReadResponse, fields)


def is_active(thread: app.Thread) -> bool:
    """Whether a turn runs on `thread` (its status says so)."""
    return isinstance(thread.status, app.ActiveThreadStatus)


def last_turn(thread: app.Thread) -> dict[str, Any] | None:
    """The last turn `thread/read` gave of `thread`, as Codex sent it (the form events show)."""
    turns = thread.turns or []
    return turns[-1].model_dump(mode="json", by_alias=True, exclude_unset=True) if turns else None


def thread_unsubscribe(*, thread_id: str) -> ClientCall[app.ThreadUnsubscribeResponse]:
    """`thread/unsubscribe`: this connection no longer follows the thread (Codex may unload it)."""
    fields = {"threadId": thread_id}
    return _call(
        methods.THREAD_UNSUBSCRIBE, app.ThreadUnsubscribeParams, app.ThreadUnsubscribeResponse, fields
    )
