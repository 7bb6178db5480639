"""Small JSON routes for the front end, all under /ngrpo/ (ComfyUI also serves them under /api/):

    GET  /ngrpo/runs                 the runs table, newest first
    GET  /ngrpo/runs/{run}           one run: its record, latest metrics and checkpoints
    POST /ngrpo/runs/{run}/cancel    cancel it (a running one stops after its next checkpoint)

Errors answer 400 with {"error": the action's message}.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..backend import actions

PREFIX = "/ngrpo"


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))  # paths and other objects become strings


async def _answer(call: Callable[[], Any]) -> web.Response:
    # The registry is SQLite: run it off the event loop so a busy database never stalls the server.
    try:
        return web.json_response(_json(await asyncio.to_thread(call)))
    except actions.ActionError as error:
        return web.json_response({"error": str(error)}, status=400)


def _run_ref(request: web.Request) -> int | str:
    ref = request.match_info["run"]
    return int(ref) if ref.isdigit() else ref


def _show(ref: int | str) -> dict[str, Any]:
    detail = actions.show_run(None, ref)
    return {
        "run": detail.info.to_dict(),
        "latest_metrics": {
            name: {"step": step, "value": value} for name, (step, value) in detail.latest_metrics.items()
        },
        "checkpoints": [dataclasses.asdict(checkpoint) for checkpoint in detail.checkpoints],
    }


def register(routes: web.RouteTableDef) -> None:
    @routes.get(f"{PREFIX}/runs")
    async def list_runs(request: web.Request) -> web.Response:
        status = request.query.get("status") or None
        return await _answer(lambda: [dataclasses.asdict(row) for row in actions.list_runs(None, status=status)])

    @routes.get(PREFIX + "/runs/{run}")
    async def show_run(request: web.Request) -> web.Response:
        return await _answer(lambda: _show(_run_ref(request)))

    @routes.post(PREFIX + "/runs/{run}/cancel")
    async def cancel_run(request: web.Request) -> web.Response:
        return await _answer(lambda: actions.cancel_run(None, _run_ref(request)).to_dict())
