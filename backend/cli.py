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


# Options every command takes, anywhere on the line. They become environment variables so the
# registry they name is also the one a worker started on demand (a child process) opens.
REGISTRY_OPTIONS = {
    "--database-url": ("NGRPO_DATABASE_URL", "PostgreSQL registry shared by several machines, "
                       "postgresql://user:password@host:port/db (default: $NGRPO_DATABASE_URL, else SQLite in the home folder)"),
    "--runs-dir": ("NGRPO_RUNS_DIR", "folder holding the run folders, e.g. shared storage "
                   "(default: $NGRPO_RUNS_DIR, else runs/ in the home folder)"),
}  # fmt: skip


def take_registry_options(argv: list[str]) -> list[str]:
    """Set the environment from REGISTRY_OPTIONS found in `argv`; the rest of `argv`."""
    rest, index = [], 0
    while index < len(argv):
        flag, equals, value = argv[index].partition("=")
        if flag in REGISTRY_OPTIONS:
            if not equals:
                if index + 1 >= len(argv):
                    raise SystemExit(f"ngrpo: error: {flag} needs a value")
                index += 1
                value = argv[index]
            os.environ[REGISTRY_OPTIONS[flag][0]] = value
        else:
            rest.append(argv[index])
        index += 1
    return rest


class UserError(Exception):
    """A problem with what the user asked for; printed without a traceback."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ngrpo",
        description="Align flow-matching text-to-image models with Neighbor GRPO.",
        epilog="--allow-plugins (anywhere on the line, or NGRPO_ALLOW_PLUGINS=1) lets reward plugins run their code.",
    )
    for flag, (_env, help) in REGISTRY_OPTIONS.items():
        parser.add_argument(flag, metavar="URL" if "url" in flag else "DIR", help=help)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, module in COMMANDS.items():
        if only is None or command == only:
            importlib.import_module(f"{__package__}.commands.{module}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = take_registry_options(sys.argv[1:] if argv is None else argv)
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
