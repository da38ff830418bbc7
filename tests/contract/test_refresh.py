"""`python -m codegen refresh` re-vendors the app-server schema from any Codex and prints the diff."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from codegen import paths

FAKE_CODEX = '''#!{python}
"""A stand-in Codex 9.9.9 whose protocol differs from the vendored one in known ways."""
import json, pathlib, sys
args = sys.argv[1:]
if args == ["--version"]:
    print("codex-cli 9.9.9")
    sys.exit(0)
assert args[:3] == ["app-server", "generate-json-schema", "--experimental"], args
out = pathlib.Path(args[args.index("--out") + 1])
out.mkdir(parents=True)
bundle = json.loads(pathlib.Path({bundle!r}).read_text())
defs = bundle["definitions"]
v2 = defs["v2"]
notifications = defs["ServerNotification"]["oneOf"]
defs["ServerNotification"]["oneOf"] = [
    n for n in notifications if n["properties"]["method"]["enum"] != ["thread/archived"]
]
request = json.loads(json.dumps(defs["ClientRequest"]["oneOf"][0]))
request["properties"]["method"]["enum"] = ["thread/teleport"]
defs["ClientRequest"]["oneOf"].append(request)
v2["TeleportTarget"] = {{"type": "object", "properties": {{"planet": {{"type": "string"}}}}}}
v2["TurnStartParams"]["required"].append("planet")
v2["TurnStartParams"]["properties"]["planet"] = {{"type": "string"}}
(out / "codex_app_server_protocol.schemas.json").write_text(json.dumps(bundle))
'''


@pytest.fixture
def fake_codex(tmp_path: Path) -> Path:
    """An executable that answers like `codex` for the two commands refresh runs."""
    script = tmp_path / "codex"
    script.write_text(FAKE_CODEX.format(python=sys.executable, bundle=str(paths.APP_SERVER_BUNDLE)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _refresh(root: Path, codex: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codegen", "refresh", "--codex", str(codex), *extra],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_refresh_dry_run_prints_a_readable_protocol_diff_and_changes_nothing(fake_codex: Path) -> None:
    before = paths.APP_SERVER_BUNDLE.read_bytes()
    completed = _refresh(paths.REPO_ROOT, fake_codex, "--dry-run")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout.splitlines()
    assert "app-server protocol: codex 0.163.0 (vendored) -> codex 9.9.9" in out[0]
    assert "  + thread/teleport" in out
    assert "  - thread/archived" in out
    assert "  + TeleportTarget" in out
    assert any(line.startswith("  ~ TurnStartParams: required +planet, field +planet") for line in out), out
    assert paths.APP_SERVER_BUNDLE.read_bytes() == before


def test_refresh_vendors_the_new_bundle_and_pin_so_codegen_check_then_reports_drift(
    fake_codex: Path, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    for part in ("codegen", "schemas", "src/codex_mcp/_generated", "src/codex_mcp/resources/data"):
        shutil.copytree(paths.REPO_ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    completed = _refresh(root, fake_codex)
    assert completed.returncode == 0, completed.stderr
    pinned = json.loads((root / "schemas/app-server/PINNED.json").read_text())
    assert pinned["codexVersion"] == "9.9.9"
    check = subprocess.run(
        [sys.executable, "-m", "codegen", "--check"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert check.returncode == 1
    assert "planet" in check.stdout


def test_refresh_names_a_missing_codex_path(tmp_path: Path) -> None:
    completed = _refresh(paths.REPO_ROOT, tmp_path / "nowhere" / "codex", "--dry-run")
    assert completed.returncode == 2
    assert "no such file" in completed.stdout
