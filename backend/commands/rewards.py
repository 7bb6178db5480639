"""`ngrpo rewards`: the rewards this install can build, and whether their weights were found."""

from __future__ import annotations

import argparse
import json
import os


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("rewards", help="list rewards and whether their weights were found")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..actions import list_rewards
    from ..rewards import ENV_VAR
    from ..rewards.plugin import plugin_status, plugins_allowed

    rows = [
        {
            "name": info.name,
            "version": info.version,
            "needs_weights": info.needs_weights,
            "weights": ("found" if info.available else "missing") if info.needs_weights else "-",
            "files": info.files,
            "description": info.description,
        }
        for info in list_rewards()
    ]
    if args.json:
        listing = {"weights_folder": os.environ.get(ENV_VAR), "plugins_allowed": plugins_allowed(), "rewards": rows}
        print(json.dumps(listing, indent=2))
        return 0
    width = max(len(row["name"]) for row in rows)
    print(f"{'name':<{width}}  version  weights  description")
    for row in rows:
        weights = row["weights"] if row["needs_weights"] else "none"
        print(f"{row['name']:<{width}}  {row['version']:<7}  {weights:<7}  {row['description']}")
        for file in row["files"]:
            print(f"{'':<{width}}  {'':<7}  {'':<7}    ← {file}")
    folder = os.environ.get(ENV_VAR)
    print(
        f"\nweights are looked for under ${ENV_VAR}={folder}"
        if folder
        else f"\n${ENV_VAR} is not set: learned rewards need a path option (see docs/rewards.md)"
    )
    print(plugin_status())
    return 0
