"""Alembic migrations of the registry, run programmatically by `storage.registry` on open."""
