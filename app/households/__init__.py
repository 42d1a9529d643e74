from flask import Blueprint

# The route modules attach their routes to ``bp`` (the wardrobe's too: its URLs live under
# /api/households/{id}/); the factory (``create_app``) imports them and registers ``bp``.
bp = Blueprint("households", __name__)
