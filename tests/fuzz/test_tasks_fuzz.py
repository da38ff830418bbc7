"""Property-based fuzzing of the MCP Tasks methods over stdio: a 2026-07-28 client declaring the
extension, `python -m codex_mcp`, the fake Codex.

Hypothesis builds the params of tasks/get, tasks/update and tasks/cancel: real task ids (a working
task, one waiting on an approval, one waiting on a question, a completed one), ids near them and
nonsense; input responses keyed by the real request keys or by anything, well formed or not. Every
request must get a result (checked against the extension's models) or INVALID_PARAMS (-32602)
naming a field, never another error; the server keeps serving.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_mcp.wire.tasks import DetailedTask
from tests.e2e.client import codex_args
from tests.e2e.modern_client import Json, ModernClient, modern_server
from tests.e2e.processes import live_processes_with_env
from tests.fuzz.strategies import FUZZ_EXAMPLES, FUZZ_SETTINGS
from tests.harness.codex_env import CodexEnv
from tests.harness.fake_app_server import APPROVE_MARKER, ASK_MARKER, HANG_MARKER, write_fake_codex

EXAMPLES: Final = max(FUZZ_EXAMPLES // 5, 20)
_SETTINGS: Final = settings(FUZZ_SETTINGS, max_examples=EXAMPLES)
CALL_BOUND_S: Final = 30.0
METHODS: Final = ("tasks/get", "tasks/update", "tasks/cancel")

pytestmark = pytest.mark.timeout(max(300, EXAMPLES * 3))

# Text any JSON encoder writes and any decoder reads back (no lone surrogates).
_TEXT: st.SearchStrategy[str] = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@dataclass
class TasksWorld:
    portal: BlockingPortal
    client: ModernClient
    task_ids: list[str] = field(default_factory=lambda: [])
    request_keys: list[str] = field(default_factory=lambda: [])

    def request(self, method: str, params: Json) -> Json:
        async def bounded() -> Json:
            with anyio.fail_after(CALL_BOUND_S):
                return await self.client.request(method, params)

        return self.portal.call(bounded)


@contextmanager
def tasks_world(codex_env: CodexEnv) -> Generator[TasksWorld]:
    fake = write_fake_codex(codex_env.root / "fake-bin")
    env = {"CODEX_MCP_PATH": str(fake), "CODEX_MCP_DRAIN_TIMEOUT_MS": "100", "CODEX_MCP_APP_SERVER": "child"}
    with ExitStack() as stack:
        portal = stack.enter_context(start_blocking_portal("asyncio"))
        client = stack.enter_context(
            portal.wrap_async_context_manager(modern_server(codex_env, "fuzz.log", env))
        )
        world = TasksWorld(portal, client)
        for prompt in (f"{HANG_MARKER} a", f"{APPROVE_MARKER} b", f"{ASK_MARKER} c", "done"):
            call = world.request("tools/call", {"name": "codex", "arguments": codex_args(prompt)})
            result = call["result"]
            if result.get("resultType") == "task":
                world.task_ids.append(result["taskId"])
        for task_id in world.task_ids:
            task = world.request("tasks/get", {"taskId": task_id})["result"]
            world.request_keys.extend(task.get("inputRequests", {}))
        yield world
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []


def _task_ids(world: TasksWorld) -> st.SearchStrategy[Any]:
    real = st.sampled_from(world.task_ids) if world.task_ids else st.just("sess_x:t:1:codex")
    near = st.tuples(real, st.integers(0, 3), _TEXT).map(_mutated)
    return st.one_of(real, real, near, _TEXT, _JSON)


def _mutated(parts: tuple[str, int, str]) -> str:
    task_id, index, text = parts
    pieces = task_id.split(":")
    pieces[index % len(pieces)] = text
    return ":".join(pieces)


def _responses(world: TasksWorld) -> st.SearchStrategy[Any]:
    keys: st.SearchStrategy[str] = st.sampled_from(world.request_keys) if world.request_keys else _TEXT
    decision = st.sampled_from(["accept", "decline", "acceptForSession", "cancel", "nope"]) | _TEXT
    content = st.one_of(
        st.fixed_dictionaries({"decision": decision}),
        st.dictionaries(_TEXT, _TEXT | _JSON, max_size=3),
        _JSON,
    )
    action = st.sampled_from(["accept", "decline", "cancel"]) | _JSON
    response: st.SearchStrategy[Any] = st.one_of(
        st.fixed_dictionaries({"action": action}, optional={"content": content}),
        _JSON,
    )
    return st.one_of(st.dictionaries(keys | _TEXT, response, max_size=3), _JSON)


def _params(world: TasksWorld, method: str) -> st.SearchStrategy[Json]:
    base: dict[str, st.SearchStrategy[Any]] = {"taskId": _task_ids(world)}
    optional: dict[str, st.SearchStrategy[Any]] = {"extra": _JSON}
    if method == "tasks/update":
        base["inputResponses"] = _responses(world)
    drop = st.sampled_from([None, "taskId", "inputResponses"])
    return st.tuples(st.fixed_dictionaries(base, optional=optional), drop).map(
        lambda pair: {k: v for k, v in pair[0].items() if k != pair[1]}
    )


def _check(world: TasksWorld, method: str, params: Json, outcomes: Counter[str]) -> None:
    answer = world.request(method, params)
    if "error" in answer:
        error = answer["error"]
        assert error["code"] == -32602, (method, params, answer)
        data: Json = error.get("data") or {}
        field_at: Any = data.get("field")
        assert isinstance(field_at, str), (method, params, answer)
        assert field_at == "taskId" or field_at.startswith("inputResponses"), (method, params, answer)
        outcomes[f"invalid:{field_at.split('.')[0]}"] += 1
        return
    result = answer["result"]
    assert result["resultType"] == "complete", answer
    if method == "tasks/get":
        task = DetailedTask.model_validate({k: v for k, v in result.items() if k != "_meta"})
        outcomes[f"task:{task.status}"] += 1
    else:
        assert set(result) <= {"resultType", "_meta"}, answer
        outcomes["ack"] += 1


@pytest.mark.parametrize("method", METHODS)
def test_task_method_params_get_a_result_or_invalid_params_naming_the_field(
    method: str, codex_env: CodexEnv
) -> None:
    outcomes: Counter[str] = Counter()
    with tasks_world(codex_env) as world:
        assert len(world.task_ids) >= 3, world.task_ids  # the hanging, approving and asking turns

        @_SETTINGS
        @given(st.data())
        def check(data: st.DataObject) -> None:
            _check(world, method, data.draw(_params(world, method)), outcomes)

        check()
        # Still serving, and the working task still reads.
        assert world.request("tasks/get", {"taskId": world.task_ids[0]})["result"]["status"]
    print(f"{method}: {dict(outcomes)}")
    assert sum(outcomes.values()) >= min(EXAMPLES, 10)
    assert any(key.startswith("task:") or key == "ack" for key in outcomes), outcomes
