"""The request path: endpoint contracts (validation, permissions, isolation, serialization),
errors, security headers and CORS, body limits, default deny, transactions and logs. Modules that
need the sample blueprint mark themselves ``pytest.mark.blueprints(sample_routes.bp)``
(tests/conftest.py builds ``app``); no fixture is shared by this folder alone."""
