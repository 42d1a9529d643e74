"""Promises over every route at once: the OpenAPI document and its links, schemathesis (stateless
and stateful), BOLA matrices, hostile strings and the hostile sweep, and races (the race matrix,
concurrent writes, exactly-once buy-flow under gunicorn). No fixture is shared by this folder
alone."""
