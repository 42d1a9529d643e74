"""The baseline: a bare Flask app answering with a fixed JSON body (BENCH_BODY_FILE)."""

import os

from flask import Flask, Response

app = Flask(__name__)
_BODY = open(os.environ["BENCH_BODY_FILE"], "rb").read()  # noqa: SIM115


@app.get("/bare")
def bare() -> Response:
    return Response(_BODY, mimetype="application/json")
