"""Alembic environment without alembic.ini: the registry hands over an open connection that is
already inside its write transaction, so concurrent openers upgrade one after the other."""

from alembic import context

if context.is_offline_mode():
    raise RuntimeError("the registry migrates only online, through storage.registry.open_registry")

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=context.config.attributes.get("target_metadata"),
    render_as_batch=True,  # SQLite alters tables by copying them; batch mode does that for us
)
with context.begin_transaction():
    context.run_migrations()
