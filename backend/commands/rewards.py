"""`ngrpo rewards`: the rewards this install can build, and whether their weights were found."""

from __future__ import annotations

import argparse
import json
import os


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("rewards", help="list rewards and whether their weights were found")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    parser.set_defaults(run=run)


def _weights_status(entry) -> tuple[str, list[str]]:
    from ..rewards.options import Options

    if not entry.needs_weights:
        return "-", []
    lookups = entry.weights(Options(entry.name, {}))
    found = [lookup.find() for lookup in lookups]
    status = "found" if all(found) else "missing"
    return status, [
        str(path) if path else f"{lookup.what}: not found" for lookup, path in zip(lookups, found, strict=True)
    ]


def run(args: argparse.Namespace) -> int:
    from ..rewards import ENV_VAR, reward_entry, reward_names

    rows = []
    for name in reward_names():
        entry = reward_entry(name)
        status, files = _weights_status(entry)
        rows.append(
            {
                "name": name,
                "version": entry.version,
                "needs_weights": entry.needs_weights,
                "weights": status,
                "files": files,
                "description": entry.description,
            }
        )
    if args.json:
        print(json.dumps({"weights_folder": os.environ.get(ENV_VAR), "rewards": rows}, indent=2))
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
    return 0
