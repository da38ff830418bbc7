"""Stop what a dead server left running: its recorded children and everything carrying its run tag.

A previous server killed with SIGKILL cannot stop its children; `codex app-server` exits when its
stdin closes, but the commands it started run in sessions of their own and live on. Every child we
spawn carries `RUN_VARIABLE=<run id>` in its environment (inherited by all it starts) and is
recorded by pid and start time, so the next server on the same state directory finds exactly
those — a pid the kernel has since given to someone else matches neither.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Final

from codex_mcp.proc import proc_tree

logger = logging.getLogger(__name__)

RUN_VARIABLE: Final = "CODEX_MCP_SERVER_RUN"
# SIGTERM first (a command may clean up), then SIGKILL whatever is left.
_TERM_GRACE_S: Final = 1.0
_KILL_WAIT_S: Final = 2.0


def run_entry(run_id: str) -> bytes:
    """The environment entry that marks the processes of server run `run_id`."""
    return f"{RUN_VARIABLE}={run_id}".encode()


def leftovers(run_id: str, recorded: proc_tree.ProcessSnapshot) -> proc_tree.ProcessSnapshot:
    """The live processes of run `run_id`: its recorded children, their descendants, its tagged ones."""
    return proc_tree.expand(recorded) | proc_tree.tagged(run_entry(run_id))


def reap(run_id: str, recorded: proc_tree.ProcessSnapshot) -> list[int]:
    """Terminate what run `run_id` left alive; returns the pids signalled."""
    victims = leftovers(run_id, recorded)
    if not victims:
        return []
    logger.warning(
        "stopping %d process(es) left by a previous codex-mcp server: %s", len(victims), sorted(victims)
    )
    victims = proc_tree.terminate(
        victims, partial(leftovers, run_id), term_grace_s=_TERM_GRACE_S, kill_wait_s=_KILL_WAIT_S
    )
    survivors = proc_tree.alive(victims)
    if survivors:
        logger.error("processes %s survived SIGKILL", sorted(survivors))
    return sorted(victims)
