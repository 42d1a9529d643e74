"""In-process cost of encryption at rest on the secured items read, the companion of
``bench_read.py --notes N``, without HTTP or gunicorn (steadier on a busy machine): GET /api/households/{id}/items?limit=20 through the Flask test client, 20 items with
notes, the same app with encryption on and with the bench passthrough (bench/plain_fields_app.py),
alternated; medians of per-batch means.

    .venv/bin/python bench/bench_encryption.py [--notes 200] [--batches 10] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_read import prepare  # noqa: E402
from bench.harness import scratch_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notes", type=int, default=200)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    from app import create_app
    from app.crypto import fields

    with scratch_dir() as directory:
        sealed = (fields.encrypt, fields.decrypt)
        encrypted_data = prepare(f"sqlite:///{directory / 'a.sqlite3'}",
                                 directory / "a.json", args.notes)
        path, token = encrypted_data.read_paths["items"], encrypted_data.token
        encrypted_app = create_app()
        plain_data = prepare(f"sqlite:///{directory / 'b.sqlite3'}",
                             directory / "b.json", args.notes, plain=True)
        plain_path, plain_token = plain_data.read_paths["items"], plain_data.token
        passthrough = (fields.encrypt, fields.decrypt)
        plain_app = create_app()

        def batch(app: Any, url: str, bearer: str, functions: tuple[Any, Any]) -> float:
            fields.encrypt, fields.decrypt = functions  # type: ignore[assignment]
            client = app.test_client()
            headers = {"Authorization": f"Bearer {bearer}"}
            start = time.perf_counter()
            for _ in range(args.requests):
                assert client.get(url, headers=headers).status_code == 200
            return (time.perf_counter() - start) / args.requests * 1000

        on, off = [], []
        for _ in range(args.batches):
            on.append(batch(encrypted_app, path, token, sealed))
            off.append(batch(plain_app, plain_path, plain_token, passthrough))
        encrypted, plain = statistics.median(on), statistics.median(off)
        print(f"\n20 items with {args.notes} characters of notes, in process, medians of "
              f"{args.batches} batches of {args.requests} requests")
        print(f"  encrypted   : {encrypted:.3f} ms/request")
        print(f"  passthrough : {plain:.3f} ms/request")
        print(f"  cost        : {encrypted - plain:.3f} ms/request "
              f"({(encrypted / plain - 1) * 100:.1f} %), ratio {plain / encrypted:.1%}")


if __name__ == "__main__":
    os.environ.setdefault("HEARTHGATE_ENV", "development")
    main()
