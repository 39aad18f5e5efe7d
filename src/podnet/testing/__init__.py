"""Builders for tests (shipped with the package so that other suites can use them too)."""
