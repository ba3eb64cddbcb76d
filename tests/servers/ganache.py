"""Pytest fixtures that start a real ganache on 127.0.0.1 for the integration tests."""
