"""Where codegen reads its schemas and writes its output."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = REPO_ROOT / "schemas"
APP_SERVER_DIR = SCHEMAS_DIR / "app-server"
APP_SERVER_BUNDLE = APP_SERVER_DIR / "codex_app_server_protocol.schemas.json"
APP_SERVER_PINNED = APP_SERVER_DIR / "PINNED.json"
EXEC_SCHEMA = SCHEMAS_DIR / "exec" / "exec_events.schema.json"
TASKS_SCHEMA = SCHEMAS_DIR / "tasks" / "tasks.schema.json"
TOOLS_DIR = SCHEMAS_DIR / "tools"
GENERATED_DIR = REPO_ROOT / "src" / "codex_mcp" / "_generated"
ERROR_SCHEMA = TOOLS_DIR / "error.json"
# Schemas of resources (the session record pages), shipped verbatim as `<name>.schema.json`.
RESOURCE_SCHEMAS_DIR = SCHEMAS_DIR / "resources"
RESOURCE_DATA_DIR = REPO_ROOT / "src" / "codex_mcp" / "resources" / "data"
EARLY_ANSWERS = REPO_ROOT / "src" / "codex_mcp" / "server" / "data" / "early_answers.json"
