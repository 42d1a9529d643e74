from flask import Blueprint

# The route modules attach their routes to these; the factory (``create_app``) imports them.
# ``internal`` holds the orchestrator's callbacks (``X-Internal-Token``): its own blueprint, so
# that its endpoint names and operation ids say they are machine-to-machine.
bp = Blueprint("buyflow", __name__)
internal = Blueprint("internal", __name__)
