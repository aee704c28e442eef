pytest_plugins = ["tests.engine_fixtures", "tests.kafka_fixtures", "tests.redis_fixtures"]
