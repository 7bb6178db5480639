"""Named prompt sets that configs refer to by name (`prompts: my-set`) and front ends browse."""

from __future__ import annotations

import time

from sqlalchemy import select

from .registry import RegistryError, open_registry
from .runs import Home
from .schema import PromptSet


def save_prompt_set(home: Home, name: str, prompts: list[str], description: str | None = None) -> None:
    """Create or replace the prompt set `name`."""
    cleaned = [p.strip() for p in prompts if p.strip()]
    if not name.strip() or not cleaned:
        raise RegistryError("a prompt set needs a name and at least one non-empty prompt")
    registry = open_registry(home)
    with registry.write() as session:
        row = session.scalars(select(PromptSet).where(PromptSet.name == name)).one_or_none()
        if row is None:
            session.add(PromptSet(name=name, prompts=cleaned, description=description, created_at=time.time()))
        else:
            row.prompts, row.description = cleaned, description


def get_prompt_set(home: Home, name: str) -> list[str]:
    registry = open_registry(home)
    with registry.read() as session:
        row = session.scalars(select(PromptSet).where(PromptSet.name == name)).one_or_none()
        if row is None:
            raise RegistryError(f"no prompt set {name!r}")
        return list(row.prompts)


def list_prompt_sets(home: Home = None) -> dict[str, int]:
    """name → number of prompts."""
    registry = open_registry(home)
    with registry.read() as session:
        return {row.name: len(row.prompts) for row in session.scalars(select(PromptSet).order_by(PromptSet.name))}
