"""`python -m codex_mcp` runs the server."""

import sys

from codex_mcp.cli import main

sys.exit(main())
