"""gunicorn settings from the environment (Heroku: PORT, WEB_CONCURRENCY)."""

import gc
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread that reads each request whole in its event loop before a thread runs it, so slow
# clients hold no thread; a request not received within GUNICORN_REQUEST_READ_TIMEOUT seconds
# (default 10) is answered 408. gunicorn's own refusals are JSON. See app/serving.py.
worker_class = "app.serving.BufferingWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "1"))  # requests run at once per worker
# Open connections per worker (being read, kept alive or running); beyond it the worker stops
# accepting until one closes. Each may buffer up to the head limits plus MAX_CONTENT_LENGTH.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
# The master restarts a worker whose event loop stops answering for this long (a thread stuck
# in a request does not stop the loop: bound requests with the database's own timeouts).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5  # seconds an idle keep-alive connection stays open
# Request head limits, refused with JSON 414 / 431 (app/serving.py): the request line (method,
# path, query: ids and cursors are short) and each header field, in bytes, and the header count.
# A field holds at most a bearer token or a cookie, well under 8 KiB.
limit_request_line = 4094
limit_request_fields = 64
limit_request_field_size = 8190
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG", "") else None
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
forwarded_allow_ips = ""  # proxies are handled by the app (TRUSTED_PROXY_COUNT), not gunicorn


def post_worker_init(worker: object) -> None:
    # The application's start-up objects (SQLAlchemy metadata, pydantic schemas, routes) live as
    # long as the worker: moved out of the collector's reach, a full collection on the request
    # path scans only what requests allocated (shorter pauses, a lower p99).
    gc.collect()
    gc.freeze()
