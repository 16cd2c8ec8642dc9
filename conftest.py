# Airbyte's standard tests parametrize their scenarios from acceptance-test-config.yml.
pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]
