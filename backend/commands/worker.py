"""`ngrpo worker`: train queued runs in the foreground (front ends also start one on demand)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("worker", help="train queued runs from the registry (the only process that trains)")
    parser.add_argument("--home", help="registry and run folders (default: $NGRPO_HOME, else the user data folder)")
    parser.add_argument("--device", help="torch device this worker trains on, e.g. cuda:1 (one worker per device)")
    parser.add_argument("--exit-when-idle", action="store_true", help="exit once the queue is empty")
    parser.add_argument(
        "--max-restarts",
        type=int,
        help="resume a run whose worker died at most this many times in a row, then fail it "
        "(default: $NGRPO_MAX_RESTARTS, else 3)",
    )
    parser.add_argument(
        "--nproc-per-node",
        type=int,
        default=1,
        metavar="N",
        help="train each run on N local processes through torchrun (one per GPU; gloo on CPU)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..worker import Worker

    if args.max_restarts is not None and args.max_restarts < 0:
        raise ValueError(f"--max-restarts must be 0 or more, got {args.max_restarts}")
    if args.nproc_per_node < 1:
        raise ValueError(f"--nproc-per-node must be at least 1, got {args.nproc_per_node}")
    worker = Worker(
        args.home,
        device=args.device,
        exit_when_idle=args.exit_when_idle,
        max_restarts=args.max_restarts,
        processes=args.nproc_per_node,
    )
    return worker.serve()
