"""One session: its settings, state, pending requests from Codex, and the parts of the tools'
results it shows (its actions, progress, info) as the generated output models."""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

import anyio

from codex_mcp.sessions.buffer import EventBuffer
from codex_mcp.sessions.events import now_iso
from codex_mcp.wire.tools import (
    Action,
    InteractionState,
    Progress,
    RecommendedNextAction,
    SessionInfo,
    TokenUsage,
    WorktreeInfo,
)
from codex_mcp.worktrees import Worktree

SessionStatus = Literal["running", "waiting_approval", "idle", "error", "cancelled"]
ActionType = Literal["approval", "user_input"]
Ownership = Literal["this-server", "other-server", "none"]
BackendName = Literal["app-server", "exec"]

TERMINAL: Final[frozenset[SessionStatus]] = frozenset({"idle", "error", "cancelled"})
# Poll hints (ms): a running turn rarely needs attention sooner; a pending approval does.
POLL_RUNNING_MS: Final = 120_000
POLL_WAITING_MS: Final = 1_000


@dataclass
class ThreadSettings:
    """What a session was started with; reply overrides of model/policy/sandbox/cwd stick here."""

    approval_policy: str
    sandbox: str
    cwd: str
    model: str | None = None
    profile: str | None = None
    effort: str | None = None
    summary: str | None = None
    personality: str | None = None
    config: dict[str, Any] | None = None
    ephemeral: bool = False
    approval_timeout_s: float = 60.0
    base_instructions: str | None = None
    developer_instructions: str | None = None
    # The remote host (CODEX_MCP_HOSTS) the session runs on; None: here.
    host: str | None = None
    # The git worktree the session runs in (`advanced.worktree`); `cwd` is inside it.
    worktree: Worktree | None = None
    # `advanced.approvals`: "poll" (actions only) or "elicit" (also asked as elicitations).
    approvals: str = "poll"


# The request params a caller reviews and answers with, copied from `params` to the top of the action
# (the reference shows `commandActions` and `proposedExecpolicyAmendment` there too). Each is declared
# in the `Action` schema of codex, codex_reply and codex_check.
ACTION_PARAMS: Final = (
    "itemId",
    "reason",
    "questions",
    "command",
    "cwd",
    "approvalId",
    "commandActions",
    "proposedExecpolicyAmendment",
    "proposedNetworkPolicyAmendments",
    "networkApprovalContext",
    "additionalPermissions",
)
# The keys of an action in the order `to_action` builds them.
ACTION_KEY_ORDER: Final = (
    "type",
    "requestId",
    "kind",
    "params",
    "createdAt",
    "expiresAt",
    *ACTION_PARAMS,
    "availableDecisions",
)


@dataclass
class PendingRequest:
    """A request from Codex waiting for the caller's answer."""

    request_id: str
    codex_id: str | int
    method: str
    action_type: ActionType
    kind: str
    params: dict[str, Any]
    created_at: str
    expires_at: str
    available_decisions: list[str] | None
    timeout_scope: anyio.CancelScope | None = None
    # Asked once as an elicitation (approvals "elicit"); a cancelled one is left for polling.
    elicited: bool = False

    def to_json(self) -> dict[str, Any]:
        """What the state directory keeps of it (other servers show it from there)."""
        return {
            "requestId": self.request_id,
            "codexId": self.codex_id,
            "method": self.method,
            "actionType": self.action_type,
            "kind": self.kind,
            "params": self.params,
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
            "availableDecisions": self.available_decisions,
        }

    @classmethod
    def from_json(cls, value: object) -> PendingRequest | None:
        """The request `to_json` wrote, or None when `value` is not one."""
        if not isinstance(value, dict):
            return None
        entry = cast(dict[str, Any], value)
        texts = [entry.get(k) for k in ("requestId", "method", "kind", "createdAt", "expiresAt")]
        action_type, codex_id, params = entry.get("actionType"), entry.get("codexId"), entry.get("params")
        decisions = entry.get("availableDecisions")
        if (
            not all(isinstance(text, str) for text in texts)
            or action_type not in ("approval", "user_input")
            or not isinstance(codex_id, str | int)
            or not isinstance(params, dict)
        ):
            return None
        request_id, method, kind, created, expires = cast(list[str], texts)
        return cls(
            request_id=request_id,
            codex_id=codex_id,
            method=method,
            action_type=action_type,
            kind=kind,
            params=cast(dict[str, Any], params),
            created_at=created,
            expires_at=expires,
            available_decisions=[str(d) for d in cast(list[object], decisions)]
            if isinstance(decisions, list)
            else None,
        )

    def to_action(self) -> Action:
        """The entry `actions[]` shows for it.

        Built unchecked (`model_construct`): the fields copied from `params` are Codex's values as
        it sent them, and a newer Codex's shape of one must reach the caller, not fail the call.
        """
        action: dict[str, Any] = {
            "type": self.action_type,
            "requestId": self.request_id,
            "kind": self.kind,
            "params": self.params,
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
        }
        for key in ACTION_PARAMS:
            value = self.params.get(key)
            if value is not None:
                action[key] = value
        if self.available_decisions is not None:
            action["availableDecisions"] = self.available_decisions
        return Action.model_construct(**action)


# How many steers a session remembers for retries (a retry comes seconds after its call, not turns).
STEERS_KEPT: Final = 32
# Turn results kept per session for the `turns` resource.
TURNS_KEPT: Final = 200


def steer_key(prompt: str, images: list[str], client_message_id: str | None) -> str:
    """What makes two steers the same call: the caller's id (or none), the prompt and the images."""
    text = json.dumps([client_message_id, prompt, images], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class SteerRecord:
    """A steer sent to a turn: which turn, the call's `steer_key`, and the clientId Codex got."""

    turn_id: str
    key: str
    client_message_id: str

    def to_json(self) -> dict[str, str]:
        """What the state directory keeps of it."""
        return {"turnId": self.turn_id, "key": self.key, "clientMessageId": self.client_message_id}

    @classmethod
    def from_json(cls, value: object) -> SteerRecord | None:
        """The record `to_json` wrote, or None when `value` is not one."""
        if not isinstance(value, dict):
            return None
        entry = cast(dict[str, object], value)
        turn_id, key, client_id = entry.get("turnId"), entry.get("key"), entry.get("clientMessageId")
        if not (isinstance(turn_id, str) and isinstance(key, str) and isinstance(client_id, str)):
            return None
        return cls(turn_id, key, client_id)


@dataclass
class TokenTotals:
    """Token usage of the session so far, as Codex last reported it."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0
    seen: bool = False

    def to_json(self) -> dict[str, int]:
        """The `TokenUsage` shape of our schemas, as a turn's result records it."""
        return {
            "inputTokens": self.input_tokens,
            "cachedInputTokens": self.cached_input_tokens,
            "outputTokens": self.output_tokens,
            "reasoningOutputTokens": self.reasoning_output_tokens,
            "totalTokens": self.total_tokens,
        }

    def usage(self) -> TokenUsage:
        """The totals as the `TokenUsage` of a result's progress."""
        return TokenUsage(
            input_tokens=self.input_tokens,
            cached_input_tokens=self.cached_input_tokens,
            output_tokens=self.output_tokens,
            reasoning_output_tokens=self.reasoning_output_tokens,
            total_tokens=self.total_tokens,
        )


@dataclass
class Session:
    """A Codex thread we drive, and everything a poll needs to answer about it."""

    session_id: str
    thread_id: str
    settings: ThreadSettings
    connection_key: str
    backend: BackendName = "app-server"
    filter_noise: bool = True
    status: SessionStatus = "running"
    created_at: str = field(default_factory=now_iso)
    last_active_at: str = field(default_factory=now_iso)
    last_active_monotonic: float = field(default_factory=time.monotonic)
    buffer: EventBuffer = field(default_factory=EventBuffer)
    last_cursor: int = 0
    active_turn_id: str | None = None
    turn_has_output_schema: bool = False
    turn_agent_messages: list[str] = field(default_factory=lambda: [])
    turn_error: dict[str, Any] | None = None
    # What a digest lists of the current (or last) turn: its commands and file changes as Codex
    # completed them, and its error messages.
    turn_commands: list[dict[str, Any]] = field(default_factory=lambda: [])
    turn_files: list[dict[str, Any]] = field(default_factory=lambda: [])
    turn_errors: list[str] = field(default_factory=lambda: [])
    # The results of the turns this server saw end, oldest first (the `turns` resource).
    turn_results: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=TURNS_KEPT))
    reconnecting_since: float | None = None
    pending: dict[str, PendingRequest] = field(default_factory=lambda: {})
    result: dict[str, Any] | None = None
    completed_at: str | None = None
    tokens: TokenTotals = field(default_factory=TokenTotals)
    phase: str = "starting"
    last_method: str | None = None
    cancelled_at: str | None = None
    cancelled_reason: str | None = None
    turn_finished: anyio.Event = field(default_factory=anyio.Event)
    ttl_warned: bool = False
    # Dropped from memory by its lifetime: it stays on disk, for `clean`, but is not found again.
    forgotten: bool = False
    # Who drives it: this server; another live one (a read-only view, `owner` says who); or none
    # (its server died, and the first server that needs it adopts it).
    ownership: Ownership = "this-server"
    owner: str | None = None

    # Called when a turn ends (`finish_turn`): the manager's hook for what follows a turn.
    on_turn_end: Callable[[Session], None] | None = None
    # Set while what follows the turn (its worktree's change summary) is still being added to its
    # result: readers of the result wait for it.
    changes_pending: anyio.Event | None = None

    # The call that started the current turn was cancelled before it returned (a client's tool
    # timeout): its caller may never have seen the session id, so `list` points the session out.
    started_by_cancelled_call: bool = False

    @property
    def read_only(self) -> bool:
        """A view of a session this server does not own: nothing may change it from here."""
        return self.ownership != "this-server"

    # Turns already given a result, so a late `turn/completed` for one of them changes nothing.
    ended_turn_ids: deque[str] = field(default_factory=lambda: deque(maxlen=16))
    # Steers sent (or being sent), newest last: a retry of one is not sent again.
    steers: deque[SteerRecord] = field(default_factory=lambda: deque(maxlen=STEERS_KEPT))

    def steer_sent(self, turn_id: str, key: str) -> SteerRecord | None:
        """The steer with `key` already sent to the turn `turn_id`, if any."""
        for record in self.steers:
            if record.turn_id == turn_id and record.key == key:
                return record
        return None

    def steer_target(self) -> str | None:
        """The turn a steer is about: the running one, or else the last that ended (where only a
        retry of a steer it took can still land)."""
        if self.status in ("running", "waiting_approval"):
            return self.active_turn_id
        return self.ended_turn_ids[-1] if self.ended_turn_ids else None

    def touch(self) -> None:
        """Record activity (for TTLs and `lastActiveAt`)."""
        self.last_active_at = now_iso()
        self.last_active_monotonic = time.monotonic()
        self.ttl_warned = False

    def begin_turn(self, *, has_output_schema: bool) -> None:
        """Reset per-turn state before a new turn starts."""
        self.status = "running"
        self.phase = "starting"
        self.active_turn_id = None
        self.turn_has_output_schema = has_output_schema
        self.turn_agent_messages = []
        self.turn_error = None
        self.turn_commands = []
        self.turn_files = []
        self.turn_errors = []
        self.reconnecting_since = None
        self.result = None
        self.completed_at = None
        self.turn_finished = anyio.Event()
        self.started_by_cancelled_call = False
        self.touch()

    def refresh_status(self) -> None:
        """running <-> waiting_approval as requests come and go; terminal states stay."""
        if self.status in TERMINAL:
            return
        self.status = "waiting_approval" if self.pending else "running"

    # --- hints -------------------------------------------------------------------

    def interaction_state(self) -> InteractionState:
        """working | waiting_input | finished."""
        if self.status in TERMINAL:
            return "finished"
        return "waiting_input" if self.pending else "working"

    def recommended_next_action(self) -> RecommendedNextAction:
        """poll | respond_permission | respond_user_input | none."""
        if self.status in TERMINAL:
            return "none"
        for request in self.pending.values():
            return "respond_user_input" if request.action_type == "user_input" else "respond_permission"
        return "poll"

    def poll_interval_ms(self) -> int | None:
        """Suggested wait before the next poll; None when nothing more will happen."""
        if self.status in TERMINAL:
            return None
        return POLL_WAITING_MS if self.pending else POLL_RUNNING_MS

    def progress(self) -> Progress:
        """The `Progress` hint."""
        phase = self.phase
        if self.status == "waiting_approval":
            phase = (
                "waiting_input"
                if self.recommended_next_action() == "respond_user_input"
                else "waiting_approval"
            )
        elif self.status in TERMINAL:
            phase = "finished"
        progress = Progress(phase=phase, pending_actions=len(self.pending))
        if self.last_method is not None:
            progress.last_method = self.last_method
        if self.tokens.seen:
            progress.tokens = self.tokens.usage()
        return progress

    def actions(self) -> list[Action]:
        """Pending requests as `actions[]`, oldest first."""
        return [request.to_action() for request in self.pending.values()]

    async def settled(self, timeout_s: float) -> None:
        """Wait (up to `timeout_s`) until the last turn's result is complete (`changes_pending`)."""
        pending = self.changes_pending
        if pending is not None:
            with anyio.move_on_after(timeout_s):
                await pending.wait()

    def public_info(self, *, include_sensitive: bool) -> SessionInfo:
        """The `SessionInfo` of `codex_session` list/get."""
        info = SessionInfo(
            session_id=self.session_id,
            status=self.status,
            created_at=self.created_at,
            last_active_at=self.last_active_at,
            approval_policy=self.settings.approval_policy,
            sandbox=self.settings.sandbox,
            backend=self.backend,
            pending_request_count=len(self.pending),
            can_resume=not self.settings.ephemeral,
            ownership=self.ownership,
        )
        if self.owner is not None and self.ownership == "other-server":
            info.owner = self.owner
        if self.settings.model is not None:
            info.model = self.settings.model
        if self.settings.host is not None:
            info.host = self.settings.host
        if self.cancelled_at is not None:
            info.cancelled_at = self.cancelled_at
        if self.cancelled_reason is not None:
            info.cancelled_reason = self.cancelled_reason
        if self.started_by_cancelled_call:
            info.started_by_cancelled_call = True
        worktree = self.settings.worktree
        if worktree is not None:
            info.worktree = worktree_info(worktree, include_path=include_sensitive)
        if include_sensitive:
            info.thread_id = self.thread_id
            info.cwd = self.settings.cwd
            if self.settings.profile is not None:
                info.profile = self.settings.profile
            if self.settings.config is not None:
                info.config = self.settings.config
        return info


def worktree_info(worktree: Worktree, *, include_path: bool = True) -> WorktreeInfo:
    """The `WorktreeInfo` of a session's worktree."""
    info = WorktreeInfo(branch=worktree.branch, base_commit=worktree.base_commit, removed=worktree.removed)
    if include_path:
        info.path = worktree.path
    if worktree.branch_deleted:
        info.branch_deleted = True
    return info
