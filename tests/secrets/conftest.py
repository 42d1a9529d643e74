"""Secret stores: one contract run against every store (memory, env, file, a real OpenBao, a real
moto server), each store's own rules, and the store inside the application. The servers
(``openbao``, ``moto``, ``aws_credentials``) are in tests/conftest.py because tests/test_config.py
uses them too."""
