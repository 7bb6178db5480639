"""The dashboard's tabs: one module per tab, each a `build(...)` that makes its widgets and wires
them to backend.actions. `app.py` assembles them; nothing here builds at import time."""
