"""Test support that is not a test: the ClickHouse HTTP server the server-path tests use."""
