"""Test bench that runs the real Codex CLI offline against a scripted mock model.

- :mod:`tests.harness.mock_model` — ``MockModelServer``: a Responses API server on 127.0.0.1.
- :mod:`tests.harness.scenarios` — the stateless ``scenario:<name>`` scripts it plays.
- :mod:`tests.harness.codex_env` — the pinned binary and isolated ``CODEX_HOME``/``HOME``/workspace.
- :mod:`tests.harness.app_server_client` — a small synchronous ``codex app-server`` driver.
- :mod:`tests.harness.fixtures` — pytest fixtures: ``mock_model``, ``codex_env``, ``codex_home``,
  ``workspace``.
"""
