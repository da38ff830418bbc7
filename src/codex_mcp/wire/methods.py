"""Codex method and `codex exec --json` event type names, for code outside `wire/`.

The constants are generated from the schemas (`_generated/methods.py`); hand code uses them instead
of spelling a name, so a renamed method breaks the type check, not a session at run time.
"""

# The names are listed once, by codegen; a hand copy of the list here would drift from it.
from codex_mcp._generated.methods import *  # noqa: F403
