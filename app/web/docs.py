"""``/api/docs``: Swagger UI over ``/api/openapi.json``, served from the ``flask-swagger-ui``
package's own copy of Swagger UI (no CDN).

The page is ours rather than the package's template: its start-up script is a file, not inline,
so the page's Content-Security-Policy (``DOCS_CSP``, set by ``app.gateway.headers``) allows
scripts from this origin only. Swagger UI sets inline styles and shows data: images, which that
policy allows. "Try it out" calls the API on the same origin with the bearer token typed into its
"Authorize" dialog, which stays in the page's memory; the online spec validator is off, so the
page calls no other host.
"""

from __future__ import annotations

from importlib.resources import files

from flask import Blueprint, Response, abort, send_from_directory
from flask.typing import ResponseReturnValue

from app.gateway.headers import DOCS_PATH

_DIST = files("flask_swagger_ui") / "dist"
_ASSETS = frozenset(
    {"swagger-ui.css", "index.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
     "favicon-32x32.png", "favicon-16x16.png"}
)

_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Hearthgate API</title>
  <link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css">
  <link rel="stylesheet" href="{DOCS_PATH}/index.css">
  <link rel="icon" type="image/png" href="{DOCS_PATH}/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>
  <script src="{DOCS_PATH}/swagger-ui-standalone-preset.js"></script>
  <script src="{DOCS_PATH}/start.js"></script>
</body>
</html>
"""

_START = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
  });
});
"""

bp = Blueprint("docs", __name__, url_prefix=DOCS_PATH)


@bp.get("")
def page() -> ResponseReturnValue:
    return Response(_PAGE, mimetype="text/html")


@bp.get("/<name>")
def asset(name: str) -> ResponseReturnValue:
    if name == "start.js":
        return Response(_START, mimetype="text/javascript")
    if name not in _ASSETS:
        abort(404)
    return send_from_directory(str(_DIST), name, max_age=3600)
