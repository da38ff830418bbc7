"""Re-vendor schemas/app-server/ from an installed Codex and print the protocol diff."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from codegen import paths, pinned
from codex_mcp.protocol_diff import diff_summaries, summarize

# generate-json-schema starts instantly; this only bounds a broken binary.
_CODEX_TIMEOUT_S = 60.0


def _codex_version(codex: Path, env: dict[str, str]) -> str:
    completed = subprocess.run(
        [str(codex), "--version"],
        capture_output=True,
        text=True,
        timeout=_CODEX_TIMEOUT_S,
        env=env,
        check=True,
    )
    return completed.stdout.strip().rsplit(" ", 1)[-1]


def run(codex: Path, *, dry_run: bool) -> int:
    """Print the diff from the vendored bundle to `codex`'s; unless `dry_run`, vendor the new one."""
    if not codex.is_file():
        print(f"refresh: --codex {codex}: no such file")
        return 2
    with tempfile.TemporaryDirectory(prefix="codex-mcp-refresh-") as scratch:
        home = Path(scratch) / "codex-home"
        home.mkdir()
        # An empty CODEX_HOME keeps the user's config (and its warnings) out of the schema run.
        env = {**os.environ, "CODEX_HOME": str(home)}
        version = _codex_version(codex, env)
        out_dir = Path(scratch) / "schema"
        subprocess.run(
            [str(codex), *pinned.GENERATE_ARGS, "--out", str(out_dir)],
            capture_output=True,
            timeout=_CODEX_TIMEOUT_S,
            env=env,
            check=True,
        )
        new_path = out_dir / paths.APP_SERVER_BUNDLE.name
        new_bundle = json.loads(new_path.read_text(encoding="utf-8"))
        old_bundle = json.loads(paths.APP_SERVER_BUNDLE.read_text(encoding="utf-8"))
        old_version = pinned.read(paths.APP_SERVER_PINNED)["codexVersion"]
        print(f"app-server protocol: codex {old_version} (vendored) -> codex {version} ({codex})")
        for line in diff_summaries(summarize(old_bundle), summarize(new_bundle)).lines():
            print(line)
        if dry_run:
            return 0
        paths.APP_SERVER_BUNDLE.write_bytes(new_path.read_bytes())
        pinned.write(paths.APP_SERVER_BUNDLE, paths.APP_SERVER_PINNED, version)
        print(f"vendored {paths.APP_SERVER_BUNDLE.relative_to(paths.REPO_ROOT)}; now run `python -m codegen`")
    return 0
