"""`ngrpo` / `python -m neighbor_grpo`: one entry point, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
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


class UserError(Exception):
    """A problem with what the user asked for; printed without a traceback."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ngrpo", description="Align flow-matching text-to-image models with Neighbor GRPO."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, module in COMMANDS.items():
        if only is None or command == only:
            importlib.import_module(f"{__package__}.commands.{module}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(only=argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (UserError, ValueError, FileNotFoundError) as error:
        print(f"ngrpo {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ngrpo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
