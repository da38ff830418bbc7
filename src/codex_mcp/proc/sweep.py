"""Stop what our children started, from a process of its own, after the server itself has exited.

A client stopping the server sends SIGKILL within ~100-400 ms of its first signal, and finding every
descendant (a scan of /proc for the children's environment tags) takes longer than that on a busy
machine. So the server kills its children's process groups and the descendants it has recorded,
starts this sweeper in a session of its own (out of reach of the client's signals to our process
group), and exits; the sweeper finds and kills the rest.

    python -m codex_mcp.proc.sweep '{"tree": {pid: start time}, "tags": ["NAME=value", ...]}'
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Final

from codex_mcp.proc import proc_tree

# A descendant may fork while we look: a few rounds, each waiting this long for the killed to go.
_ROUNDS: Final = 3
_WAIT_S: Final = 2.0
_POLL_S: Final = 0.02
_KEPT_VARIABLES: Final = ("PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LANG", "LC_ALL")
# What `python -m` runs; a test holds it to this module's own name, so a move cannot break the spawn.
MODULE: Final = "codex_mcp.proc.sweep"


def start_detached(tree: proc_tree.ProcessSnapshot, tags: list[str]) -> None:
    """Start the sweeper for `tree` and the processes carrying any of `tags`; returns at once."""
    order = json.dumps({"tree": {str(pid): start for pid, start in tree.items()}, "tags": tags})
    null = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    # Only what Python needs to start: the sweeper must not look like one of the processes it
    # sweeps (or like a child of ours to anyone checking our environment).
    env = {name: os.environ[name] for name in _KEPT_VARIABLES if name in os.environ}
    try:
        # Not subprocess: nobody is to wait for it (it outlives us), and a Popen dropped while its
        # process runs warns.
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", MODULE, order],
            env,
            file_actions=null,
            setsid=True,
        )
    except OSError:
        sweep(tree, tags, rounds=1)  # no sweeper: do one round ourselves


def sweep(tree: proc_tree.ProcessSnapshot, tags: list[str], *, rounds: int = _ROUNDS) -> None:
    """SIGKILL `tree`, its descendants and every process carrying one of `tags`, until none is left."""
    entries = {tag.encode() for tag in tags}
    victims = dict(tree)
    for _ in range(rounds):
        victims = proc_tree.expand(victims) | proc_tree.tagged_any(entries)
        if not victims:
            return
        proc_tree.signal_all(victims, signal.SIGKILL)
        deadline = time.monotonic() + _WAIT_S
        while proc_tree.alive(victims) and time.monotonic() < deadline:
            time.sleep(_POLL_S)


def main(argv: list[str]) -> int:
    """Entry point: one JSON argument (see the module doc)."""
    order = json.loads(argv[0])
    tree = {int(pid): int(start) for pid, start in order.get("tree", {}).items() if start is not None}
    sweep(tree, [str(tag) for tag in order.get("tags", [])])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
