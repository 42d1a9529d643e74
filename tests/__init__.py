"""The test suite, in one folder per promise (README, "Tests"). Shared support is ``testkit``;
its asserts are rewritten by pytest like the tests' own, so a failing helper shows its values.
This runs before tests/conftest.py imports anything from it."""

import pytest

pytest.register_assert_rewrite("testkit")
