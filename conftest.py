"""Makes the shared fixtures (real Redis, fixed clock, signing) available to ``tests/`` and to each adapter's
own ``tests.py`` beside its fixtures."""

pytest_plugins = ["tests.support", "tests.redis_server", "tests.browser_support"]
