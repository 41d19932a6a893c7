def pytest_configure(config):
    config.addinivalue_line("markers", "slow: builds or installs something (tens of seconds); deselect with -m 'not slow'")
