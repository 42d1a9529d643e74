"""Rate limiting, on ``limits`` (the engine of Flask-Limiter), for the endpoint contracts and the
failed-login throttle alike.

- ``storage``: the storage URI as the ``limiter_storage`` hook accepts it, opened with timeouts;
  the strategies by name; the hashing of keys that may hold personal data.
- ``fallback``: one application's storage, this process's fallback and the suspension between
  them; both the contract limits and the login throttle count through it.
- ``policy``: the contract limits (the caller's bucket, the endpoint's own) and the 429.
- ``headers``: the rate-limit response headers.
- ``memory``, ``redis_window``: a memory storage without timer threads, and one Redis round trip
  per fixed-window hit.
- ``setup``: ``init_rate_limits`` and the accessors of the application's instances.

The gateway calls the contract limiter from the request path (``app.gateway.contracts``); the
features (the login throttle in ``app.auth.throttle``) build on ``fallback``. Nothing here
imports a feature. Why ``limits`` rather than Flask-Limiter: README, "Rate limits".
"""
