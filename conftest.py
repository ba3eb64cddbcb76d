# Real servers the suite starts itself (ganache, js-ipfs, PostgreSQL); each module owns one.
pytest_plugins = [
    "tests.servers.ganache",
    "tests.servers.ipfs",
    "tests.servers.postgres",
]
