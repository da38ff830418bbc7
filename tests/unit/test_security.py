"""Security properties checked over the code and the argv we build, without running anything."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Final

import pytest

from codex_mcp.backends.exec_argv import ExecTurnSpec, build_exec_argv
from codex_mcp.errors import CodexMcpError
from codex_mcp.server.results import failure
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.wire.tools import output_json

SRC: Final = Path(__file__).resolve().parents[2] / "src" / "codex_mcp"
# Calls that hand a string to a shell.
_SHELL_CALLS: Final = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("asyncio", "create_subprocess_shell"),
}
_SPAWN_CALLS: Final = {"open_process", "run_process", "Popen", "run", "call", "check_output", "spawn"}


def _calls(source: str) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]


def _name(call: ast.Call) -> tuple[str, str]:
    func = call.func
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else ""
        return owner, func.attr
    return "", func.id if isinstance(func, ast.Name) else ""


def _shell_uses(source: str) -> list[str]:
    """`line: what` for each call in `source` that runs a command string through a shell."""
    offenders: list[str] = []
    for call in _calls(source):
        owner, name = _name(call)
        if (owner, name) in _SHELL_CALLS:
            offenders.append(f"{call.lineno}: {owner}.{name}")
        for keyword in call.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                offenders.append(f"{call.lineno}: shell=")
        first = call.args[0] if call.args else None
        if name in _SPAWN_CALLS and isinstance(first, ast.Constant | ast.JoinedStr | ast.BinOp):
            offenders.append(f"{call.lineno}: {name} with a command string")
    return offenders


def test_the_shell_check_sees_each_kind_of_shell_use() -> None:
    source = """
os.system("ls")
subprocess.run(cmd, shell=True)
anyio.open_process(f"codex {flag}")
asyncio.create_subprocess_shell(cmd)
anyio.open_process([codex, "exec"])
"""
    assert [line.split(": ")[1] for line in _shell_uses(source)] == [
        "os.system",
        "shell=",
        "open_process with a command string",
        "asyncio.create_subprocess_shell",
    ]


def test_nothing_we_spawn_goes_through_a_shell() -> None:
    sources = {path.relative_to(SRC): path.read_text() for path in SRC.rglob("*.py")}
    assert any("open_process(" in source for source in sources.values()), "the scan sees our spawns"
    offenders = {str(path): found for path, source in sources.items() if (found := _shell_uses(source))}
    assert offenders == {}


_HOSTILE_KEYS: Final = [
    "--dangerously-bypass-approvals-and-sandbox",
    "-c",
    "model=x",
    "a b",
    "model\n--full-auto",
    "",
    "sandbox_mode --yolo",
]


@pytest.mark.parametrize("key", _HOSTILE_KEYS)
def test_a_config_key_cannot_add_a_flag(key: str) -> None:
    spec = ExecTurnSpec(prompt="hi", cwd="/w", config={key: "v"})
    argv, warnings = build_exec_argv("codex", spec, None)
    assert argv == build_exec_argv("codex", ExecTurnSpec(prompt="hi", cwd="/w"), None)[0]
    assert any("not a dotted TOML key path" in warning for warning in warnings)


@pytest.mark.parametrize(
    "value", ["--dangerously-bypass-approvals-and-sandbox", "x\n-c sandbox_mode=danger", "a' --yolo '"]
)
def test_a_config_value_stays_inside_its_own_argument(value: str) -> None:
    argv, _ = build_exec_argv("codex", ExecTurnSpec(prompt="hi", cwd="/w", config={"model": value}), None)
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"]
    assert len(pairs) == 1
    assert pairs[0].startswith("model=")
    assert all(not arg.startswith("--dangerously") for arg in argv)


def test_prompt_model_and_thread_id_cannot_read_as_flags() -> None:
    spec = ExecTurnSpec(
        prompt="--dangerously-bypass-approvals-and-sandbox",
        cwd="/w",
        model="--full-auto",
        thread_id="-x",
        images=["-i.png"],
    )
    argv, _ = build_exec_argv("codex", spec, None)
    separator = argv.index("--")
    assert argv[separator + 1 :] == ["-x", "--dangerously-bypass-approvals-and-sandbox"]
    assert "--model=--full-auto" in argv
    assert argv[argv.index("-i") + 1] == "/w/-i.png"
    flags = [arg for arg in argv[:separator] if arg.startswith("-")]
    assert set(flags) <= {"--json", "--skip-git-repo-check", "-C", "-i", "--model=--full-auto"}


def _session() -> Session:
    settings = ThreadSettings(
        approval_policy="never",
        sandbox="read-only",
        cwd="/home/alice/secret-project",
        profile="work",
        config={"model_provider": "corp"},
    )
    return Session(session_id="sess_1", thread_id="thr_1", settings=settings, connection_key="k")


def test_session_info_shows_cwd_config_profile_and_thread_only_when_asked() -> None:
    session = _session()
    public = output_json(session.public_info(include_sensitive=False))
    text = repr(public)
    for secret in ("/home/alice", "corp", "work", "thr_1"):
        assert secret not in text
    sensitive = output_json(session.public_info(include_sensitive=True))
    assert (sensitive["cwd"], sensitive["config"], sensitive["profile"], sensitive["threadId"]) == (
        "/home/alice/secret-project",
        {"model_provider": "corp"},
        "work",
        "thr_1",
    )


@pytest.mark.parametrize(
    "message",
    [
        "cannot read /home/alice/.ssh/id_rsa: denied",
        "CODEX_MCP_PATH=/opt/tools/codex: not executable",
        r"C:\Users\alice\codex.exe failed",
        "auth failed with sk-live_abcdefghijkl and Bearer abcdefghijklmnop",
    ],
)
def test_error_results_redact_paths_and_secrets(message: str) -> None:
    result = failure(CodexMcpError("INTERNAL", message))
    structured: Any = result.structured_content
    text = structured["error"]["message"]
    assert not re.search(r"/home/alice|/opt/tools|C:\\Users|sk-live|abcdefghijklmnop", text)
    assert "<path>" in text or "<secret>" in text
