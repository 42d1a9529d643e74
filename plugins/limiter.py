"""Built-in limiter storage: the URIs that the ``limits`` library serves.

``memory://`` (one process: development, or production with one worker), ``redis://`` and
``rediss://`` (also Heroku's ``REDIS_URL``), ``redis+unix://``, ``redis+sentinel://``,
``redis+cluster://`` and ``memcached://`` (needs pymemcache: ``pip install hearthgate[memcached]``).
"""

from __future__ import annotations

import importlib.util
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.config import ConfigurationRefused
from app.hookspecs import hookimpl
from app.ratelimit.storage import REDIS_TIMEOUT_OPTIONS

SCHEMES = frozenset(
    {"memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster", "memcached"}
)

# redis-py waits forever by default; a limiter that hangs would hang every request. (Sentinel and
# cluster take theirs as constructor options: app.ratelimit.storage.storage_options.)
REDIS_TIMEOUTS = {name: str(seconds) for name, seconds in REDIS_TIMEOUT_OPTIONS.items()}


def with_redis_timeouts(uri: str) -> str:
    """Add connect/read timeouts to a ``redis://`` URI unless it sets its own."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    query.extend((name, value) for name, value in REDIS_TIMEOUTS.items() if name not in present)
    return urlunsplit(parts._replace(query=urlencode(query)))


@hookimpl
def limiter_storage(uri: str, config: dict[str, Any]) -> str | None:
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in SCHEMES:
        return None
    if scheme == "memcached" and importlib.util.find_spec("pymemcache") is None:
        raise ConfigurationRefused(
            ["RATELIMIT_STORAGE_URI is memcached:// but pymemcache is not installed"]
        )
    if scheme in ("redis", "rediss"):
        return with_redis_timeouts(uri)
    return uri
