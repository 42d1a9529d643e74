"""What the tests and the benchmarks share, kept outside ``tests/`` so that ``bench/`` imports
nothing from the test suite.

- ``testkit.servers``: real external processes on 127.0.0.1 at free ports, stopped by PID
  (PostgreSQL, gunicorn, Redis, memcached, OpenBao, moto, the OpenID provider, Chromium).
- ``testkit.builders``: rows and clients built through the real API or written behind its back
  (users and tokens, households, buy-flow families, audit events, secret-store backends, the
  schemathesis world, signed webhook deliveries, sent mails, the every-route sweeps).
- ``testkit.apps``: blueprints, plugins and WSGI modules that exist only for tests.
- ``testkit.checks``: pytest plugins that every test runs under (no secret in any log line or
  stored audit detail), loaded by ``tests/conftest.py``.

Fixtures live in the ``conftest.py`` of the test folder that uses them, or in ``tests/conftest.py``
when several folders do. No module of ``tests/`` imports another (``tests/test_layout.py``): a
helper two test modules share lives here.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root directory."""
