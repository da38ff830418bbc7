"""`codex exec` argv: every setting reaches Codex as a flag it accepts, or is named in a warning."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codex_mcp.backends.exec_argv import ExecTurnSpec, build_exec_argv, toml_value

CODEX = "/opt/codex/bin/codex"
CWD = "/work/project"
THREAD = "01a20b9e-2c31-76d3-979d-4ca3baebdaee"
# What `codex exec resume --help` of 0.163.0 does not list.
RESUME_REJECTS = ("-s", "--sandbox", "-C", "--cd", "-p", "--profile")


def _full_spec(**changes: Any) -> ExecTurnSpec:
    spec = ExecTurnSpec(
        prompt="Fix the bug.",
        cwd=CWD,
        sandbox="workspace-write",
        model="gpt-test",
        effort="high",
        summary="concise",
        config={"tools.web_search": True},
        images=["shot.png", "/abs/diagram.png"],
        ephemeral=True,
    )
    for name, value in changes.items():
        setattr(spec, name, value)
    return spec


def _options(argv: list[str]) -> list[str]:
    """argv before the `--` that ends the options."""
    return argv[: argv.index("--")]


def _pairs(argv: list[str], flag: str) -> list[str]:
    options = _options(argv)
    return [options[i + 1] for i, arg in enumerate(options) if arg == flag]


def test_a_first_turn_argv_carries_every_setting_as_a_flag() -> None:
    argv, warnings = build_exec_argv(CODEX, _full_spec(), "/private/schema.json")

    assert argv[:4] == [CODEX, "exec", "--json", "--skip-git-repo-check"]
    assert _pairs(argv, "-C") == [CWD]
    assert _pairs(argv, "-s") == ["workspace-write"]
    assert "--model=gpt-test" in argv
    assert _pairs(argv, "-c") == [
        "tools.web_search=true",
        'model_reasoning_effort="high"',
        'model_reasoning_summary="concise"',
    ]
    assert _pairs(argv, "-i") == [f"{CWD}/shot.png", "/abs/diagram.png"]
    assert _pairs(argv, "--output-schema") == ["/private/schema.json"]
    assert "--ephemeral" in _options(argv)
    assert argv[-2:] == ["--", "Fix the bug."]
    assert warnings == []


def test_a_resume_argv_has_no_flag_exec_resume_rejects_and_expresses_the_sandbox_as_config() -> None:
    argv, warnings = build_exec_argv(CODEX, _full_spec(thread_id=THREAD), "/private/schema.json")

    assert argv[:5] == [CODEX, "exec", "resume", "--json", "--skip-git-repo-check"]
    assert not set(_options(argv)) & set(RESUME_REJECTS)
    assert _pairs(argv, "-c")[-1] == 'sandbox_mode="workspace-write"'
    assert "--model=gpt-test" in argv
    assert _pairs(argv, "-i") == [f"{CWD}/shot.png", "/abs/diagram.png"]
    assert _pairs(argv, "--output-schema") == ["/private/schema.json"]
    assert "--ephemeral" in _options(argv)
    # The thread id and the prompt are the two positionals, after `--`.
    assert argv[-3:] == ["--", THREAD, "Fix the bug."]
    # The working directory is the child's own (run_exec_turn spawns it there): nothing is lost.
    assert warnings == []


@pytest.mark.parametrize("thread_id", [None, THREAD])
@pytest.mark.parametrize("policy", ["untrusted", "on-request", "on-failure"])
def test_an_approval_policy_exec_cannot_honour_is_not_passed_and_is_named_in_a_warning(
    thread_id: str | None, policy: str
) -> None:
    argv, warnings = build_exec_argv(CODEX, _full_spec(thread_id=thread_id, approval_policy=policy), None)

    assert not any("approval_policy" in arg for arg in argv)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"approval_policy={policy!r} not passed")
    assert "never" in warnings[0]


def test_approval_policy_never_is_what_exec_does_anyway_so_it_needs_no_flag_and_no_warning() -> None:
    argv, warnings = build_exec_argv(CODEX, _full_spec(approval_policy="never"), None)

    assert not any("approval_policy" in arg for arg in argv)
    assert warnings == []


def test_an_approval_policy_smuggled_through_config_is_held_back_with_a_warning() -> None:
    spec = _full_spec(config={"approval_policy": "untrusted", "model_verbosity": "low"})

    argv, warnings = build_exec_argv(CODEX, spec, None)

    assert 'model_verbosity="low"' in _pairs(argv, "-c")
    assert not any("approval_policy" in arg for arg in argv)
    assert [w.split(" ", 1)[0] for w in warnings] == ["config.approval_policy='untrusted'"]


def test_config_values_are_toml_encoded_one_c_per_pair() -> None:
    config: dict[str, Any] = {
        "model_verbosity": "low",
        "hide_agent_reasoning": False,
        "model_context_window": 8192,
        "temperature_hint": 0.5,
        "sandbox_workspace_write.writable_roots": ["/tmp/a", "/tmp/b"],
        "tools.update_plan": {"enabled": True},
        "shell_environment_policy": {"set": {"A B": 'say "hi"\n'}},
    }
    argv, warnings = build_exec_argv(CODEX, ExecTurnSpec(prompt="p", cwd=CWD, config=config), None)

    pairs = _pairs(argv, "-c")
    assert pairs == [
        'model_verbosity="low"',
        "hide_agent_reasoning=false",
        "model_context_window=8192",
        "temperature_hint=0.5",
        'sandbox_workspace_write.writable_roots=["/tmp/a", "/tmp/b"]',
        "tools.update_plan={enabled = true}",
        'shell_environment_policy={set = {"A B" = "say \\"hi\\"\\n"}}',
    ]
    for pair, value in zip(pairs, config.values(), strict=True):
        assert tomllib.loads(f"v = {pair.split('=', 1)[1]}")["v"] == value
    assert warnings == []


def test_a_config_value_that_looks_like_a_flag_stays_one_quoted_argv_element() -> None:
    spec = ExecTurnSpec(prompt="p", cwd=CWD, config={"model": "x --dangerously-bypass-approvals-and-sandbox"})

    argv, _ = build_exec_argv(CODEX, spec, None)

    assert 'model="x --dangerously-bypass-approvals-and-sandbox"' in argv
    assert "--dangerously-bypass-approvals-and-sandbox" not in argv
    assert not any(arg.startswith("--dangerously") for arg in argv)


@pytest.mark.parametrize("key", ["--yolo", "a=b", "has space", "", "a..b", "-c"])
def test_a_config_key_that_is_not_a_dotted_key_path_is_not_passed_and_is_named_in_a_warning(key: str) -> None:
    argv, warnings = build_exec_argv(CODEX, ExecTurnSpec(prompt="p", cwd=CWD, config={key: 1}), None)

    assert _pairs(argv, "-c") == []
    assert len(warnings) == 1
    assert repr(key) in warnings[0]


def test_a_config_value_toml_cannot_hold_is_not_passed_and_is_named_in_a_warning() -> None:
    spec = ExecTurnSpec(prompt="p", cwd=CWD, config={"model": None, "model_verbosity": "low"})

    argv, warnings = build_exec_argv(CODEX, spec, None)

    assert _pairs(argv, "-c") == ['model_verbosity="low"']
    assert len(warnings) == 1
    assert warnings[0].startswith("config model: null has no TOML form")


@pytest.mark.parametrize("prompt", ["-i evil.png", "--help", "-", "plain words"])
def test_the_prompt_is_the_last_element_after_the_double_dash_whatever_it_starts_with(prompt: str) -> None:
    for thread_id in (None, THREAD):
        spec = ExecTurnSpec(prompt=prompt, cwd=CWD, thread_id=thread_id, images=["a.png"])

        argv, _ = build_exec_argv(CODEX, spec, None)

        assert argv[-1] == prompt
        assert argv.index("--") == len(argv) - (3 if thread_id else 2)


def test_without_a_schema_path_no_output_schema_flag_is_passed() -> None:
    argv, _ = build_exec_argv(CODEX, ExecTurnSpec(prompt="p", cwd=CWD), None)

    assert "--output-schema" not in argv
    assert argv == [CODEX, "exec", "--json", "--skip-git-repo-check", "-C", CWD, "--", "p"]


def test_a_sandbox_mode_codex_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="sandbox must be one of"):
        build_exec_argv(CODEX, ExecTurnSpec(prompt="p", cwd=CWD, sandbox="yolo"), None)


_json_values = st.recursive(
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(_json_values)
def test_toml_encoding_reads_back_as_the_same_value(value: object) -> None:
    assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value
