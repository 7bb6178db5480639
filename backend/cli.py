"""`ngrpo` / `python -m neighbor_grpo`: one entry point, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Subcommand → module defining `add_parser(subparsers)`, which registers it with a `run(args)`.
# Only the module of the command being run is imported, so `ngrpo runs list` does not pay for
# torch and diffusers.
COMMANDS = {
    "sample": "sample",
    "train": "train",
    "runs": "runs",
    "worker": "worker",
    "score": "score",
    "rewards": "rewards",
    "pretrain-tiny": "pretrain",
}


TRACEBACK_ENV = "NGRPO_TRACEBACK"


class UserError(Exception):
    """A problem with what the user asked for; printed without a traceback."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ngrpo",
        description="Align flow-matching text-to-image models with Neighbor GRPO.",
        epilog="--allow-plugins (anywhere on the line, or NGRPO_ALLOW_PLUGINS=1) lets reward plugins run their code.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, module in COMMANDS.items():
        if only is None or command == only:
            importlib.import_module(f"{__package__}.commands.{module}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--allow-plugins" in argv:  # accepted anywhere on the line: it is a safety switch, not an option
        from .rewards.plugin import allow_plugins

        argv = [arg for arg in argv if arg != "--allow-plugins"]
        allow_plugins()
    parser = build_parser(only=argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (UserError, ValueError, OSError) as error:
        # ValueError covers ConfigError, RegistryError and RewardError; OSError a missing,
        # unreadable or full file. Their messages name the problem and the fix.
        print(f"ngrpo {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ngrpo {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        # A bug, or a failure deep in a dependency: still no traceback unless asked for one.
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(
            f"ngrpo {args.command}: error: {type(error).__name__}: {error} "
            f"(set {TRACEBACK_ENV}=1 to see the traceback, and report it if it looks like a bug)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
