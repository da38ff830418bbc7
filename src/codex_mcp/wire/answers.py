"""Our answers to Codex's requests, as the generated response models of the pinned protocol.

An answer is validated into its response model where it is made: an answer Codex's schema would
refuse is our bug, and shows as one here rather than as a turn that hangs in Codex.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from codex_mcp._generated import registry


def answer(method: str, result: dict[str, Any]) -> BaseModel:
    """`result` as the generated response model of the server request `method`.

    Only what `result` sets goes out (the wire dumps set fields only): model defaults never leak.

    Raises:
        KeyError: `method` is no server request of the pinned protocol.
        pydantic.ValidationError: `result` is no answer its schema takes.
    """
    response: type[BaseModel] = registry.SERVER_REQUESTS[method][1]
    return response.model_validate(result)
