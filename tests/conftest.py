"""Shared fixtures. Backend fixtures live in their own plugin modules so each backend's
owner can change them without touching the others."""

pytest_plugins = [
    "tests.fixtures_pg",
    "tests.fixtures_s3",
]
