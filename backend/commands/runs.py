"""`ngrpo runs`: list, inspect and control the runs in the registry."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..cli import UserError

HOME_HELP = "registry and run folders (default: $NGRPO_HOME, else the user data folder)"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("runs", help="list, inspect, cancel, resume, export and delete runs")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help: str, handler, run_arg: bool = True) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help)
        sub.add_argument("--home", help=HOME_HELP)
        if run_arg:
            sub.add_argument("target", metavar="RUN", help="run id or name")
        sub.set_defaults(run=handler)
        return sub

    listing = action("list", "the runs, newest first", run_list, run_arg=False)
    listing.add_argument("--status", help="only runs with this status (queued, running, failed, ...)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    action("show", "one run: settings, progress, latest metrics, checkpoints", run_show).add_argument(
        "--json", action="store_true", help="machine-readable output"
    )
    action("cancel", "cancel a queued run, or a running one after its next checkpoint", run_cancel)
    resume = action(
        "resume", "queue an interrupted, failed or cancelled run again from its last checkpoint", run_resume
    )
    resume.add_argument("--no-worker", action="store_true", help="only queue it; do not start a worker")
    action("save", "ask a running run for a checkpoint now", run_save)
    action("sample", "ask a running run for evaluation samples now", run_sample)
    export = action("export", "copy the LoRA of a checkpoint", run_export)
    export.add_argument("--step", type=int, help="checkpoint step (default: the newest with a LoRA)")
    export.add_argument("--out", help="file or folder to write (default: NAME-stepS.safetensors here)")
    delete = action("delete", "forget a run and delete its folder", run_delete)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _when(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds)) if seconds else "-"


def _progress(run) -> str:
    return f"{run.progress_step}/{run.progress_total}" if run.progress_total else str(run.progress_step)


def run_list(args: argparse.Namespace) -> int:
    from ..actions import list_runs, run_infos

    if args.json:
        print(json.dumps([run.to_dict() for run in run_infos(args.home, status=args.status)], indent=2))
        return 0
    runs = list_runs(args.home, status=args.status, limit=None)
    if not runs:
        print("no runs" + (f" with status {args.status}" if args.status else ""))
        return 0
    rows = [("ID", "NAME", "STATUS", "PROGRESS", "MODEL", "ALGORITHM", "CREATED", "NOTE")]
    for run in runs:
        progress = f"{run.step}/{run.total}" if run.total else str(run.step)
        rows.append(
            (
                str(run.id),
                run.name,
                run.status,
                progress,
                run.model,
                run.algorithm,
                _when(run.created_at),
                run.note[:60],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def run_show(args: argparse.Namespace) -> int:
    from ..actions import show_run

    detail = show_run(args.home, args.target)
    run, metrics, checkpoints = detail.info, detail.latest_metrics, detail.checkpoints
    if args.json:
        shown = {
            **run.to_dict(),
            "latest_metrics": {name: {"step": step, "value": value} for name, (step, value) in metrics.items()},
            "checkpoints": [
                {"step": c.step, "folder": str(c.folder), "lora_path": str(c.lora_path) if c.lora_path else None,
                 "sha256": c.sha256} for c in checkpoints
            ],
        }  # fmt: skip
        print(json.dumps(shown, indent=2))
        return 0
    print(f"run {run.id}: {run.name}  [{run.status}]  step {_progress(run)}")
    print(f"  model {run.model}, algorithm {run.algorithm}, prompts {run.prompt_set or '(in config)'}")
    rewards = ", ".join(f"{reward['name']}:{reward['weight']:g}" for reward in run.rewards)
    print(f"  rewards {rewards or '-'}")
    print(f"  created {_when(run.created_at)}, started {_when(run.started_at)}, finished {_when(run.finished_at)}")
    print(f"  folder {run.folder}")
    if run.error:
        print(f"  error: {run.error}")
    for name, (step, value) in sorted(metrics.items()):
        print(f"  {name} = {value:.6g} (step {step})")
    for c in checkpoints:
        print(f"  checkpoint step {c.step}: {c.lora_path or c.folder}")
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from ..actions import cancel_run

    run = cancel_run(args.home, args.target)
    print(f"run {run.id} ({run.name}): " + ("cancel requested" if run.status == "running" else run.status))
    return 0


def run_resume(args: argparse.Namespace) -> int:
    from ..actions import resume_run

    run, pid = resume_run(args.home, args.target, start_worker=not args.no_worker)
    print(f"run {run.id} ({run.name}) queued; it continues from its last checkpoint")
    if pid is not None:
        print(f"started a worker (pid {pid})")
    return 0


def run_save(args: argparse.Namespace) -> int:
    from ..actions import request_checkpoint

    run = request_checkpoint(args.home, args.target)
    print(f"run {run.id} ({run.name}): checkpoint requested")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from ..actions import request_samples

    run = request_samples(args.home, args.target)
    print(f"run {run.id} ({run.name}): samples requested")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..actions import ExportRequest, export_lora

    result = export_lora(args.home, ExportRequest(args.target, step=args.step, out=args.out))
    print(f"wrote {result.path}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from ..actions import delete_run, get_run

    run = get_run(args.home, args.target)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError("deleting needs confirmation: pass --yes")
        if input(f"delete run {run.id} ({run.name}) and {run.folder}? [y/N] ").strip().lower() != "y":
            print("kept")
            return 1
    delete_run(args.home, run.id)
    print(f"deleted run {run.id} ({run.name})")
    return 0
