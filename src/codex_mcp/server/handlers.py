"""One function per tool: validated arguments in, the tool's generated output model out."""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.lowlevel

from codex_mcp.backend_mode import ModeResolver
from codex_mcp.errors import CodexMcpError
from codex_mcp.hosts import Host
from codex_mcp.profiles import profile_config
from codex_mcp.readiness import readiness_report
from codex_mcp.server.images import image_problem
from codex_mcp.sessions.manager import SessionManager, TurnRequest
from codex_mcp.sessions.polling import (
    Elicitor,
    PollRequest,
    TurnOutput,
    poll,
    turn_output,
    wait_entries,
    wait_for_sessions,
    worktree_changes,
)
from codex_mcp.sessions.session import POLL_RUNNING_MS, Session, ThreadSettings, worktree_info
from codex_mcp.sessions.shaping import json_size
from codex_mcp.sessions.worktree_sessions import CleanEntry
from codex_mcp.wire.tools import (
    CodexCheckInput,
    CodexCheckOutput,
    CodexInput,
    CodexOutput,
    CodexReplyInput,
    CodexReplyOutput,
    CodexSessionInput,
    CodexSessionOutput,
    CodexSetupInput,
    CodexSetupOutput,
    Steered,
    WorktreeCleanup,
    output_json,
)

_DEFAULT_CLEAN_STATUSES: Final = ["error", "cancelled"]


@dataclass
class Call:
    """What a handler may use besides its arguments."""

    manager_or_error: SessionManager | CodexMcpError
    report_progress: Callable[[float, str], Awaitable[None]]
    # Progress notifications while waiting keep clients with idle timeouts from giving up.
    heartbeat_s: float = 15.0
    # The backend, settled on first need; None when no Codex was found.
    backend: ModeResolver | None = None
    # The remote hosts sessions may run on (CODEX_MCP_HOSTS).
    hosts: tuple[Host, ...] = ()
    # `advanced.approvals` when a `codex` call leaves it out (CODEX_MCP_APPROVALS).
    default_approvals: str = "poll"
    # Asks the client about the pending requests of "elicit" sessions while a call waits; None:
    # the client declared no form elicitation, so everything is polled.
    elicitor: Elicitor | None = None

    @property
    def manager(self) -> SessionManager:
        """The session manager; raises why there is none (no Codex) when the server has none."""
        if isinstance(self.manager_or_error, CodexMcpError):
            raise self.manager_or_error
        return self.manager_or_error


def _local_path(raw: str, base: str | None, field: str) -> Path:
    """`raw` as an absolute resolved path (`~` expanded, relative to `base`), or INVALID_ARGUMENT."""
    try:
        path = Path(raw).expanduser()
        path = (path if path.is_absolute() else Path(base or Path.cwd()) / path).resolve()
        # A name that is not UTF-8 (a symlink may lead to one) cannot travel in Codex's JSON.
        str(path).encode("utf-8")
    except (RuntimeError, ValueError, OSError) as exc:  # `~nobody`, a NUL byte, a loop, not UTF-8
        why = "its name is not UTF-8" if isinstance(exc, UnicodeError) else str(exc)
        raise CodexMcpError(
            "INVALID_ARGUMENT", f"{field}: {raw} is not a usable path ({why})", field=field
        ) from exc
    return path


def _holds(check: Callable[[], bool]) -> bool:
    """`path.is_dir`-style checks, false when the OS refuses the path (too long, NUL byte)."""
    try:
        return check()
    except (OSError, ValueError):
        return False


def _host_path(raw: str, base: str | None, field: str) -> str:
    """`raw` as an absolute path on a remote host (relative ones from `base`), normalised; what is
    there is the host's to check."""
    if raw.startswith("~") or "\0" in raw or (base is None and not posixpath.isabs(raw)):
        raise CodexMcpError(
            "INVALID_ARGUMENT",
            f"{field}: {raw} is not an absolute path; sessions run on remote hosts (CODEX_MCP_HOSTS), "
            "so give the path as it is on the host",
            field=field,
        )
    return posixpath.normpath(posixpath.join(base or "/", raw))


def _existing_dir(raw: str | None, field: str, *, on_host: bool = False) -> str:
    if on_host:
        if not raw:
            raise CodexMcpError(
                "INVALID_ARGUMENT",
                f"{field}: required, since sessions run on remote hosts (CODEX_MCP_HOSTS): "
                "the directory on the host",
                field=field,
            )
        return _host_path(raw, None, field)
    path = _local_path(raw, None, field) if raw else Path.cwd()
    if not _holds(path.is_dir):
        raise CodexMcpError("INVALID_ARGUMENT", f"{field}: {raw} is not an existing directory", field=field)
    return str(path)


def _image_files(paths: list[str] | None, cwd: str, field: str, *, on_host: bool = False) -> list[str]:
    """Resolved paths of existing image files (relative ones from `cwd`), checked by `image_problem`;
    on a remote host, absolute paths there (Codex on the host reads them)."""
    found: list[str] = []
    for index, raw in enumerate(paths or []):
        where = f"{field}[{index}]"
        if on_host:
            found.append(_host_path(raw, cwd, where))
            continue
        path = _local_path(raw, cwd, where)
        if not _holds(path.is_file):
            raise CodexMcpError("INVALID_ARGUMENT", f"{where}: {raw} is not an existing file", field=where)
        problem = image_problem(path)
        if problem is not None:
            raise CodexMcpError("INVALID_ARGUMENT", f"{where}: {raw} {problem}", field=where)
        found.append(str(path))
    return found


def _text(value: Any) -> str | None:
    """An open-enum argument (a Literal or a plain string) as a string."""
    return None if value is None else str(value)


def _thread_config(profile: str | None, overrides: dict[str, Any] | None) -> dict[str, Any] | None:
    """The profile's settings with `advanced.config` on top (`app-server` itself takes no profile)."""
    config = dict(profile_config(profile)) if profile else {}
    config.update(overrides or {})
    return config or None


@dataclass(frozen=True)
class Shape:
    """How `codex`/`codex_reply` answer: responseMode digest (within `max_bytes`) or full."""

    digest: bool = False
    max_bytes: int | None = None


async def _finish(
    model: type[TurnOutput],
    session: Session,
    wait_ms: int | None,
    warnings: list[str],
    call: Call,
    *,
    shape: Shape | None = None,
) -> TurnOutput:
    """The CodexOutput/CodexReplyOutput (`model`), after the optional foreground wait."""
    # A cancel that came while the turn was starting lands here, where the caller can note it.
    await anyio.lowlevel.checkpoint()

    async def heartbeat(elapsed_s: float) -> None:
        await call.report_progress(elapsed_s, f"session {session.session_id} is {session.status}")

    shape = shape or Shape()
    return await turn_output(
        session,
        wait_ms,
        warnings,
        heartbeat,
        call.heartbeat_s,
        model=model,
        elicitor=call.elicitor,
        digest=shape.digest,
        digest_bytes=shape.max_bytes,
    )


async def resume_wait(
    args: CodexInput | CodexReplyInput, session: Session, call: Call
) -> CodexOutput | CodexReplyOutput:
    """A 2026-07-28 retry of `codex`/`codex_reply` (its answers applied): the same call's answer for
    the session it started or continued, after its wait; it starts nothing."""
    if isinstance(args, CodexReplyInput):
        return await _finish(CodexReplyOutput, session, args.wait_for_result, [], call, shape=_shape(args))
    wait_ms = args.advanced.wait_for_result if args.advanced else None
    return await _finish(CodexOutput, session, wait_ms, [], call, shape=_shape(args))


def _shape(args: CodexInput | CodexReplyInput) -> Shape:
    """How a `codex`/`codex_reply` answer is shaped: whole, or a digest within a budget."""
    if isinstance(args, CodexReplyInput):
        return Shape(digest=args.response_mode == "digest", max_bytes=args.max_bytes)
    advanced = args.advanced
    return Shape(
        digest=bool(advanced and advanced.response_mode == "digest"),
        max_bytes=advanced.max_bytes if advanced else None,
    )


async def codex(args: CodexInput, call: Call) -> CodexOutput:
    """Start a session."""
    advanced = args.advanced
    on_host = bool(call.hosts)  # every new session then runs on one of them
    cwd = _existing_dir(args.cwd, "cwd", on_host=on_host)
    images = _image_files(advanced.images if advanced else None, cwd, "advanced.images", on_host=on_host)
    settings = ThreadSettings(
        approval_policy=str(args.approval_policy),
        sandbox=str(args.sandbox),
        cwd=cwd,
        model=args.model,
        profile=args.profile,
        effort=_text(args.effort),
        summary=_text(advanced.summary) if advanced else None,
        personality=_text(advanced.personality) if advanced else None,
        config=_thread_config(args.profile, advanced.config if advanced else None),
        ephemeral=bool(advanced.ephemeral) if advanced else False,
        approval_timeout_s=(advanced.approval_timeout_ms or 60_000) / 1000 if advanced else 60.0,
        base_instructions=advanced.base_instructions if advanced else None,
        developer_instructions=advanced.developer_instructions if advanced else None,
        host=advanced.host if advanced else None,
        approvals=str(advanced.approvals) if advanced and advanced.approvals else call.default_approvals,
    )
    turn = TurnRequest(
        prompt=args.prompt,
        images=images,
        output_schema=advanced.output_schema if advanced else None,
        collaboration_mode=_text(advanced.collaboration_mode) if advanced else None,
    )
    worktree = _worktree_request(advanced.worktree if advanced else None, on_host=on_host)
    warnings: list[str] = []
    begun: list[Session] = []
    try:
        session = await call.manager.start(settings, turn, warnings, begun.append, worktree=worktree)
        wait_ms = advanced.wait_for_result if advanced else None
        return await _finish(CodexOutput, session, wait_ms, warnings, call, shape=_shape(args))
    except anyio.get_cancelled_exc_class():
        _note_cancelled(call, begun)
        raise


async def codex_reply(args: CodexReplyInput, call: Call) -> CodexReplyOutput:
    """Continue a session with a new turn, or (`steer`) add to the turn that runs."""
    if args.steer:
        return await _steer(args, call)
    session = await call.manager.get(args.session_id)
    on_host = session.settings.host is not None
    cwd = _existing_dir(args.cwd, "cwd", on_host=on_host) if args.cwd else None
    images = _image_files(args.images, cwd or session.settings.cwd, "images", on_host=on_host)
    turn = TurnRequest(
        prompt=args.prompt,
        images=images,
        effort=_text(args.effort),
        summary=_text(args.summary),
        personality=_text(args.personality),
        output_schema=args.output_schema,
        collaboration_mode=_text(args.collaboration_mode),
        model=args.model,
        approval_policy=_text(args.approval_policy),
        sandbox=_text(args.sandbox),
        cwd=cwd,
    )
    warnings: list[str] = []
    begun: list[Session] = []
    try:
        session = await call.manager.reply(args.session_id, turn, warnings, begun.append)
        return await _finish(
            CodexReplyOutput, session, args.wait_for_result, warnings, call, shape=_shape(args)
        )
    except anyio.get_cancelled_exc_class():
        _note_cancelled(call, begun)
        raise


async def _steer(args: CodexReplyInput, call: Call) -> CodexReplyOutput:
    """`codex_reply` with `steer: true`: the prompt joins the running turn (the rules file refuses
    a new turn's overrides with it). Starts no turn, so a cancelled call leaves nothing to mark."""
    session = await call.manager.get(args.session_id)
    on_host = session.settings.host is not None
    images = _image_files(args.images, session.settings.cwd, "images", on_host=on_host)
    session, steered = await call.manager.steer(args.session_id, args.prompt, images, args.client_message_id)
    output = await _finish(CodexReplyOutput, session, args.wait_for_result, [], call, shape=_shape(args))
    output.steered = Steered(
        turn_id=steered.turn_id, client_message_id=steered.client_message_id, duplicate=steered.duplicate
    )
    return output


def _worktree_request(raw: bool | str | None, *, on_host: bool) -> bool | str:
    """`advanced.worktree` as the manager takes it (False: none); refused for remote hosts, whose
    repositories are not ours to run git in."""
    if raw is None or raw is False:
        return False
    if on_host:
        raise CodexMcpError(
            "INVALID_ARGUMENT",
            "advanced.worktree: not available when sessions run on remote hosts (CODEX_MCP_HOSTS)",
            field="advanced.worktree",
        )
    return raw


def _note_cancelled(call: Call, begun: list[Session]) -> None:
    """A `codex`/`codex_reply` call cancelled by its client (its tool timeout, most often) or by a
    shutdown: its caller never gets the session id, so the session it started is marked for `list`."""
    for session in begun:
        call.manager.note_cancelled_call(session)


def _require_session_id(args: CodexSessionInput) -> str:
    if args.session_id is None:
        raise CodexMcpError(
            "INVALID_ARGUMENT", f"sessionId is required for action={args.action}", field="sessionId"
        )
    return args.session_id


async def codex_session(args: CodexSessionInput, call: Call) -> CodexSessionOutput:
    """list | get | cancel | interrupt | fork | clean | clean_background_terminals | worktree_patch |
    worktree_keep | worktree_remove | wait."""
    manager = call.manager
    action = args.action
    if action == "wait":
        return await _wait(args, call)
    if action == "list":
        return CodexSessionOutput(
            action=action,
            sessions=[s.public_info(include_sensitive=False) for s in manager.all_sessions()],
        )
    if action == "clean":
        statuses = [str(s) for s in args.statuses] if args.statuses else _DEFAULT_CLEAN_STATUSES
        include_disk = args.include_disk is not False
        matched, disk_removed, cleaned = await manager.clean(
            statuses, args.older_than_ms, dry_run=bool(args.dry_run), include_disk=include_disk
        )
        removed = [] if args.dry_run else matched
        return CodexSessionOutput(
            action=action,
            matched_session_ids=matched,
            removed_session_ids=removed,
            removed_count=len(removed),
            disk_sessions_removed=disk_removed,
            dry_run=bool(args.dry_run),
            worktrees=[_cleanup(entry) for entry in cleaned],
        )
    session_id = _require_session_id(args)
    if action == "get":
        # The session's fields at the top level, as the reference returns them.
        session = await manager.lookup(session_id)
        info = session.public_info(include_sensitive=bool(args.include_sensitive))
        return CodexSessionOutput.model_validate({"action": action, **output_json(info)})
    if action == "cancel":
        await manager.cancel(session_id)
        return CodexSessionOutput(action=action, success=True, message=f"session {session_id} cancelled")
    if action == "interrupt":
        await manager.interrupt(session_id)
        return CodexSessionOutput(
            action=action, success=True, message=f"interrupt sent to session {session_id}"
        )
    if action == "fork":
        fork = await manager.fork(session_id)
        return CodexSessionOutput(
            action=action,
            session_id=fork.session_id,
            thread_id=fork.thread_id,
            status=fork.status,
            # An idle fork has nothing to poll yet: the interval for once a reply starts a turn.
            poll_interval=fork.poll_interval_ms() or POLL_RUNNING_MS,
            message=f"forked from {session_id}",
        )
    if action in ("worktree_patch", "worktree_keep", "worktree_remove"):
        return await _finish_worktree(manager, action, session_id, force=bool(args.force))
    await manager.clean_background_terminals(session_id)
    return CodexSessionOutput(
        action=action, success=True, message=f"background terminals of {session_id} cleaned"
    )


_WAIT_DEFAULT_MS: Final = 25_000


async def _wait(args: CodexSessionInput, call: Call) -> CodexSessionOutput:
    """wait: until any/all of sessionIds finished, one needs an answer, or waitMs passed."""
    if not args.session_ids:
        raise CodexMcpError("INVALID_ARGUMENT", "sessionIds is required for action=wait", field="sessionIds")
    manager = call.manager
    for index, session_id in enumerate(args.session_ids):
        try:
            await manager.lookup(session_id)  # SESSION_NOT_FOUND before any waiting
        except CodexMcpError as exc:
            raise CodexMcpError(exc.code, exc.message, field=f"sessionIds[{index}]") from exc
    until = args.until or "any"
    wait_ms = args.wait_ms if args.wait_ms is not None else _WAIT_DEFAULT_MS
    # A cancel that came with the call lands here, before the wait.
    await anyio.lowlevel.checkpoint()
    sessions, reason, waited_ms = await wait_for_sessions(
        manager,
        args.session_ids,
        until,
        wait_ms / 1000,
        heartbeat=call.report_progress,
        heartbeat_s=call.heartbeat_s,
    )
    output = CodexSessionOutput(action="wait", waited=[], until=until, reason=reason, waited_ms=waited_ms)
    digest = (args.response_mode or "digest") == "digest"
    output.waited = wait_entries(
        sessions, digest=digest, max_bytes=args.max_bytes, overhead=json_size(output_json(output))
    )
    return output


def _cleanup(entry: CleanEntry) -> WorktreeCleanup:
    return WorktreeCleanup(
        session_id=entry.session_id,
        path=entry.worktree.path,
        branch=entry.worktree.branch,
        commits_changes=entry.commits_changes,
        keeps_branch=entry.keeps_branch,
    )


async def _finish_worktree(
    manager: SessionManager, action: str, session_id: str, *, force: bool
) -> CodexSessionOutput:
    """worktree_patch | worktree_keep | worktree_remove."""
    if action == "worktree_patch":
        patch = await manager.worktree_patch(session_id)
        output = CodexSessionOutput(
            action="worktree_patch",
            session_id=session_id,
            changes=worktree_changes(patch.changes),
            patch=patch.text,
        )
        if patch.truncated:
            output.patch_truncated = True
        return output
    if action == "worktree_keep":
        finished = await manager.worktree_keep(session_id)
        message = f"worktree removed; branch {finished.worktree.branch} kept"
        if finished.committed is not None:
            message += f" (what was uncommitted is its commit {finished.committed[:12]})"
    else:
        finished = await manager.worktree_remove(session_id, force=force)
        message = f"worktree and branch {finished.worktree.branch} removed"
    info = worktree_info(finished.worktree)
    if finished.head is not None:
        info.head_commit = finished.head
    if finished.committed is not None:
        info.changes_committed = finished.committed
    return CodexSessionOutput(
        action="worktree_keep" if action == "worktree_keep" else "worktree_remove",
        session_id=session_id,
        success=True,
        message=message,
        worktree=info,
    )


async def codex_check(args: CodexCheckInput, call: Call) -> CodexCheckOutput:
    """poll | respond_permission | respond_user_input, then a poll-shaped answer."""
    manager = call.manager
    warnings: list[str] = []
    if args.action == "poll":
        session = await manager.lookup(args.session_id)
    elif args.action == "respond_permission":
        assert args.request_id is not None  # the schema requires it for this action
        assert args.decision is not None
        amendment = args.network_policy_amendment
        session = await manager.respond_permission(
            args.session_id,
            args.request_id,
            decision=str(args.decision),
            execpolicy_amendment=args.execpolicy_amendment,
            network_policy_amendment=amendment.model_dump(by_alias=True) if amendment else None,
            deny_message=args.deny_message,
        )
    else:  # respond_user_input
        assert args.request_id is not None  # the schema requires it for this action
        assert args.answers is not None
        answers = {key: value.model_dump(by_alias=True) for key, value in args.answers.items()}
        session = await manager.respond_user_input(args.session_id, args.request_id, answers)
    options = args.poll_options
    mode = args.response_mode or "minimal"
    request = PollRequest(
        cursor=args.cursor,
        max_events=args.max_events,
        answering=args.action != "poll",
        include_events=options.include_events is not False if options else True,
        include_actions=options.include_actions is not False if options else True,
        include_result=options.include_result is not False if options else True,
        skip_deltas=bool(options.skip_deltas) if options else False,
        final_only=bool(options.final_only) if options else False,
        wait_ms=options.wait_ms if options else None,
        response_mode="minimal" if mode == "digest" else mode,
        max_bytes=options.max_bytes if options else None,
        digest=mode == "digest",
    )
    return await poll(manager, session, request, warnings, call.elicitor)


async def codex_setup(args: CodexSetupInput, call: Call) -> CodexSetupOutput:
    """The readiness report."""
    cwd = None
    if args.cwd is not None:
        path = _local_path(args.cwd, None, "cwd")
        # The report looks for `.codex/config.toml` in it and its parents; the deepest must be a
        # path the OS takes (a missing one is reported, not refused).
        try:
            (path / ".codex" / "config.toml").exists()
        except OSError as exc:
            raise CodexMcpError(
                "INVALID_ARGUMENT", f"cwd: {args.cwd} is not a usable path ({exc})", field="cwd"
            ) from exc
        cwd = str(path)
    if call.backend is None:
        return await readiness_report(cwd, "unknown", "no Codex found", call.hosts)
    choice = await call.backend.resolve()
    return await readiness_report(cwd, choice.mode, choice.source, call.hosts)
