"""A Codex app-server shared by every server on a state directory, outliving each of them."""
