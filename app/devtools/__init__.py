"""Development-only helpers for the demo SPA (``DEMO_HELPERS_ENABLED``).

They stand in for services a developer does not run locally, such as the orchestrator that fills
the cart. Production refuses the setting (``app.config``) and this package never registers its
routes there either, so a misread setting still cannot expose them.
"""
