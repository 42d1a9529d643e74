from flask import Blueprint

# The route modules attach their routes to ``bp``; the factory (``create_app``) imports them.
bp = Blueprint("webhooks", __name__)
