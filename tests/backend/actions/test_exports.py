"""The actions layer's names: `from ...actions import *` and dir() list exactly what it can import."""

from __future__ import annotations

from neighbor_grpo.backend import actions


def test_every_lazily_imported_name_is_exported_and_resolves():
    assert sorted(actions.__all__) == sorted(actions._WHERE)
    assert all(getattr(actions, name) is not None for name in ("run_pulse", "runs_pulse", "plugin_status"))
