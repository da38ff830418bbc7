"""A transparent stdio relay that logs every JSON-RPC message between an MCP client and its server.

    python tests/harness/stdio_recorder.py LOG -- COMMAND [ARGS...]

Starts COMMAND, relays stdin to it and its stdout back line by line, and appends one JSON line per
message to LOG: ``{"t": seconds since COMMAND was spawned, "dir": "in"|"out", "id", "method"}``, plus
a first ``{"dir": "spawn"}`` line. Signals it receives go to COMMAND; it exits with COMMAND's code.
The relay costs the client one Python start-up (~20 ms) before the server is spawned, and well under
a millisecond per message. :func:`recorded` reads the log back.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Final, cast


def _describe(line: bytes) -> dict[str, Any]:
    try:
        message: object = json.loads(line)
    except ValueError:
        return {"unparsed": True}
    if not isinstance(message, dict):
        return {"batch": True}
    parsed = cast(dict[str, object], message)
    fields: dict[str, Any] = {}
    for key in ("id", "method"):
        value = parsed.get(key)
        if value is not None:
            fields[key] = value
    if "error" in parsed:
        fields["error"] = True
    return fields


RECORDER: Final = Path(__file__).resolve()


def recorder_argv(log: Path, command: Sequence[str]) -> list[str]:
    """The argv that runs ``command`` behind this relay, logging to ``log``."""
    return [sys.executable, str(RECORDER), str(log), "--", *command]


def recorded(log: Path) -> list[dict[str, object]]:
    """The entries of a relay log (empty when the relay never started)."""
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8").splitlines()
    return [cast(dict[str, object], json.loads(line)) for line in lines if line.strip()]


def main(argv: list[str]) -> int:
    """Relay between our stdio and the command after ``--``."""
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    log_path, command = argv[0], argv[2:]
    lock = threading.Lock()
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed after both relays end
    spawned = time.monotonic()

    def record(direction: str, line: bytes | None) -> None:
        entry = {"t": round(time.monotonic() - spawned, 4), "dir": direction}
        if line is not None:
            entry.update(_describe(line))
        with lock:
            if not log.closed:
                log.write(json.dumps(entry) + "\n")
                log.flush()

    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    record("spawn", None)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))

    def relay(source: IO[bytes], sink: IO[bytes], direction: str) -> None:
        try:
            for line in iter(source.readline, b""):
                record(direction, line)
                sink.write(line)
                sink.flush()
        except (BrokenPipeError, OSError):
            pass
        finally:
            if direction == "in":
                with contextlib.suppress(OSError):
                    sink.close()

    assert child.stdin is not None
    assert child.stdout is not None
    inbound = threading.Thread(target=relay, args=(sys.stdin.buffer, child.stdin, "in"), daemon=True)
    outbound = threading.Thread(target=relay, args=(child.stdout, sys.stdout.buffer, "out"), daemon=True)
    inbound.start()
    outbound.start()
    code = child.wait()
    outbound.join(timeout=2)
    record("exit", None)
    with lock:
        log.close()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
