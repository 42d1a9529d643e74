"""gunicorn settings from the environment (Heroku: PORT, WEB_CONCURRENCY)."""

import gc
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "sync" if threads == 1 else "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
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
