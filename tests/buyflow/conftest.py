"""The buy-flow: purchase requests, intents and checkout, idempotency, the internal callbacks,
Hyperbeam webhooks and the demo helper. ``family`` (tests/conftest.py) is built with the settings
of each module's ``pytest.mark.settings``."""
