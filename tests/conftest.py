pytest_plugins = ["tests.engine_fixtures", "tests.redis_fixtures"]
