"""A stand-in `codex app-server` that streams deltas as fast as a pipe takes them (for bench/ingest.py).

It answers `initialize`, `thread/start` and `turn/start` with the results the real Codex gave in
the recorded `plain` transcript, then writes BENCH_DELTAS `item/agentMessage/delta` notifications
and the recorded `turn/completed`. BENCH_SHAPE=distinct gives each delta its own item, so no two
coalesce and every one becomes an event of its own.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, cast

TRANSCRIPT = Path(__file__).resolve().parent.parent / "tests/contract/transcripts/app_server/plain.jsonl"
CHUNK = 2000


def _recorded() -> tuple[dict[int, Any], dict[str, Any]]:
    results: dict[int, Any] = {}
    completed: dict[str, Any] = {}
    for line in TRANSCRIPT.read_text().splitlines():
        record = json.loads(line)
        if record["dir"] != "in" or not isinstance(record["msg"], dict):
            continue
        message = cast(dict[str, Any], record["msg"])
        if "result" in message:
            results[message["id"]] = message["result"]
        elif message.get("method") == "turn/completed":
            completed = message
    return results, completed


def main() -> None:
    results, completed = _recorded()
    count = int(os.environ.get("BENCH_DELTAS", "1000"))
    distinct = os.environ.get("BENCH_SHAPE") == "distinct"
    thread_id = completed["params"]["threadId"]
    turn_id = completed["params"]["turn"]["id"]
    answers = {"initialize": results[1], "thread/start": results[2], "turn/start": results[3]}
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = json.loads(line)
        method, request_id = request.get("method"), request.get("id")
        if request_id is None:
            continue
        out.write(json.dumps({"id": request_id, "result": answers.get(method, {})}).encode() + b"\n")
        out.flush()
        if method != "turn/start":
            continue
        for start in range(0, count, CHUNK):
            batch: list[str] = []
            for i in range(start, min(start + CHUNK, count)):
                params = {
                    "threadId": thread_id,
                    "turnId": turn_id,
                    "itemId": f"msg_{i}" if distinct else "msg_0",
                    "delta": f"token {i} ",
                }
                batch.append(json.dumps({"method": "item/agentMessage/delta", "params": params}))
            out.write(("\n".join(batch) + "\n").encode())
        out.write(json.dumps(completed).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
