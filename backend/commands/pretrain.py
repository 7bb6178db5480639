"""`ngrpo pretrain-tiny`: rebuild the embedded model from scratch, seeded and reproducible."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from ..models.pretrain import PretrainSettings


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("pretrain-tiny", help="pretrain the embedded tiny model on the shapes world")
    for field in fields(PretrainSettings):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, type=type(field.default), default=field.default, help=f"default {field.default}")
    parser.add_argument("--out", type=Path, required=True, help="folder for model.safetensors and config.json")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..models.pretrain import pretrain

    settings = PretrainSettings(**{f.name: getattr(args, f.name) for f in fields(PretrainSettings)})
    if settings.steps < 1 or settings.batch_size < 1:
        raise ValueError("--steps and --batch-size must be at least 1")
    pretrain(settings, args.out)
    print(f"wrote {args.out / 'model.safetensors'}")
    return 0
