"""The MCP Tasks extension's messages (schemas/tasks/): typed params in, typed task objects out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from codex_mcp._generated.tasks import (
    DetailedTask,
    InputRequest,
    InputResponse,
    TaskHandle,
    TasksCancelParams,
    TasksGetParams,
    TaskStatus,
    TasksUpdateParams,
)
from codex_mcp._generated.tasks import Error as TaskError

__all__ = [
    "DetailedTask",
    "InputRequest",
    "InputResponse",
    "ParamsError",
    "TaskError",
    "TaskHandle",
    "TaskStatus",
    "TasksCancelParams",
    "TasksGetParams",
    "TasksUpdateParams",
    "parse_params",
    "task_json",
]

_Params = TypeVar("_Params", TasksGetParams, TasksUpdateParams, TasksCancelParams)


class ParamsError(ValueError):
    """Params that break the schema: `field` is the JSON path at fault (`inputResponses.k.action`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def parse_params(model: type[_Params], params: Mapping[str, Any] | None) -> _Params:
    """`params` (the request's raw params, `_meta` and unknown members ignored) as `model`."""
    try:
        return model.model_validate(dict(params or {}), by_alias=True, by_name=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ParamsError(field, first["msg"]) from None


def task_json(task: BaseModel) -> dict[str, Any]:
    """A TaskHandle/DetailedTask as sent: absent optional members left out, `ttlMs` always there."""
    dumped = task.model_dump(by_alias=True, mode="json", exclude_none=True)
    dumped.setdefault("ttlMs", None)
    return dumped
