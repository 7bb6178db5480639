"""The run registry (SQLite) and the run folders: the one place front ends and the worker meet.

Front ends call the functions re-exported here; the worker uses `claims`, `reporter` and
`liveness`. See docs/registry.md.
"""

from .history import latest_metrics, list_checkpoints, list_samples, metric_series
from .home import resolve_home
from .liveness import recover_stale_runs
from .prompt_sets import get_prompt_set, list_prompt_sets, save_prompt_set
from .registry import Registry, RegistryError, open_registry
from .runs import (
    RunInfo,
    RunNotFound,
    cancel_run,
    delete_run,
    export_lora,
    get_run,
    insert_run,
    list_runs,
    request_sample,
    request_save,
    resume_run,
)
from .workers import ensure_worker, worker_alive

__all__ = [
    "Registry",
    "RegistryError",
    "RunInfo",
    "RunNotFound",
    "cancel_run",
    "delete_run",
    "ensure_worker",
    "export_lora",
    "get_prompt_set",
    "get_run",
    "insert_run",
    "latest_metrics",
    "list_checkpoints",
    "list_prompt_sets",
    "list_runs",
    "list_samples",
    "metric_series",
    "open_registry",
    "recover_stale_runs",
    "request_sample",
    "request_save",
    "resolve_home",
    "resume_run",
    "save_prompt_set",
    "worker_alive",
]  # fmt: skip
