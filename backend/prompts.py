"""Prompt sets: a named built-in set, an inline list, or a text file with one prompt per line."""

from __future__ import annotations

from pathlib import Path

from .world import shapes

BUILTIN_SETS = {
    "shapes:train": shapes.train_prompts,
    "shapes:test": shapes.test_prompts,
    "shapes:all": lambda: [spec.prompt for spec in shapes.all_specs()],
}


def resolve_prompts(source: str | list[str]) -> list[str]:
    """Prompts from a set name (e.g. 'shapes:train'), a list, or a .txt file path."""
    if isinstance(source, list):
        prompts = [p.strip() for p in source if p.strip()]
        where = "the inline prompt list"
    elif source in BUILTIN_SETS:
        prompts = BUILTIN_SETS[source]()
        where = source
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(
                f"unknown prompt set {source!r}: not a built-in set ({', '.join(BUILTIN_SETS)}) "
                "and no such file; give a set name, a list of prompts, or a .txt file with one prompt per line"
            )
        prompts = [line.strip() for line in read_prompt_lines(path)]
        prompts = [p for p in prompts if p and not p.startswith("#")]
        where = str(path)
    if not prompts:
        raise ValueError(f"{where} holds no prompts")
    return prompts


def read_prompt_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file; a line that is not UTF-8 is named with its number."""
    lines = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            lines.append(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{path}, line {number}: not UTF-8 text (byte {raw[error.start]:#04x} at column {error.start + 1}); "
                "save the prompt file as UTF-8"
            ) from None
    return lines
