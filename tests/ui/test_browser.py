"""A person's path through the dashboard in a real browser: launch a small run on the embedded
model, watch it finish, open its curves and gallery, compare base vs aligned, download the LoRA;
and a bad input (an empty prompt file) that must show a clear message."""

from __future__ import annotations

import hashlib
import re

import pytest

from neighbor_grpo.backend import actions

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def by_id(elem_id: str) -> str:
    return f'[id="{elem_id}"]'


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def set_number(page, elem_id: str, value: int) -> None:
    field = page.locator(f"{by_id(elem_id)} input").first
    field.fill(str(value))
    field.press("Tab")


def test_launch_watch_inspect_compare_and_download(page, dashboard, shots, tmp_path):
    _, home = dashboard
    page.locator(f"{by_id('new.name')} textarea, {by_id('new.name')} input").first.fill("browser-run")
    for elem_id, value in {
        "new.iterations": 4, "new.group_size": 4, "new.prompts_per_iteration": 2,
        "new.checkpoint_every": 2, "new.eval.every": 4,
    }.items():  # fmt: skip
        set_number(page, elem_id, value)
    page.screenshot(path=shots / "new_run.png", full_page=True)
    page.locator(by_id("new.launch")).click()
    page.locator(by_id("new.status")).get_by_text("Queued run").wait_for()
    # A second page watches the run's detail while it trains: only its timer's ticks (which send
    # just what changed) can bring it the final status, curves and images.
    watcher = page.context.new_page()
    ticks: list[str] = []
    # queue=False events are one plain POST to /run/predict (queued ones join the queue instead).
    watcher.on(
        "request", lambda request: ticks.append(request.url) if "/gradio_api/run/predict" in request.url else None
    )
    watcher.goto(page.url)
    open_tab(watcher, "Run detail")
    watcher.locator(by_id("detail.header")).get_by_role("heading").filter(has_text="browser-run").wait_for()

    open_tab(page, "Runs")
    table = page.locator(by_id("runs.table"))

    def cell(text: str):
        # The table keeps a hidden copy of each cell for measuring; the visible one is the user's.
        return table.get_by_text(text, exact=True).filter(visible=True).first

    cell("browser-run").wait_for()
    # The table refreshes itself while the run is queued or running; no clicks needed.
    cell("finished").wait_for(timeout=150_000)
    page.screenshot(path=shots / "runs.png", full_page=True)
    [run] = actions.list_runs(home)
    assert (run.name, run.status, run.step) == ("browser-run", "finished", 4)
    watcher.locator(by_id("detail.header")).get_by_text("finished").wait_for(timeout=60_000)
    watcher.locator(f"{by_id('detail.gallery')} img").first.wait_for()
    # Its charts were first given rows while the run was live: they must draw each metric (the
    # legend names it), not keep the axis types of an empty frame.
    legend = watcher.locator(f"{by_id('detail.plot0')} svg text").filter(has_text=re.compile(r"^reward$"))
    legend.first.wait_for()
    watcher.close()
    assert ticks, "the Run detail timer posts its ticks directly (queue=False), not through the queue"

    cell("browser-run").click()
    page.locator(by_id("runs.selected")).get_by_text("browser-run").wait_for()
    page.locator(by_id("runs.open")).click()
    page.locator(by_id("detail.header")).get_by_text("finished").wait_for()
    gallery = page.locator(f"{by_id('detail.gallery')} .ngrpo-group")
    gallery.first.wait_for()
    groups = actions.run_gallery(home, run.id).groups
    assert gallery.count() == len(groups) and page.locator(f"{by_id('detail.gallery')} img").count() == sum(
        len(g.images) for g in groups
    )
    page.locator(f"{by_id('detail.plot1')} canvas, {by_id('detail.plot1')} svg").first.wait_for()
    loaded = page.locator(f"{by_id('detail.gallery')} img").first
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=loaded.element_handle())
    page.screenshot(path=shots / "run_detail.png", full_page=True)

    open_tab(page, "Compare")
    page.locator(by_id("compare.checkpoints")).get_by_text("4").wait_for()
    page.locator(by_id("compare.go")).click()
    cells = page.locator(f"{by_id('compare.grid')} td img")
    cells.first.wait_for(timeout=60_000)
    assert cells.count() == 2 * 4 * 2  # base + step 4, × 4 held-out prompts × 2 seeds
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=cells.first.element_handle())
    assert page.locator(f"{by_id('compare.grid')} th").filter(has_text="step 4").count() == 1
    page.screenshot(path=shots / "compare.png", full_page=True)

    open_tab(page, "Export")
    button = page.locator(by_id("export.download"))
    page.wait_for_function("b => !b.disabled && b.textContent.includes('step 4')", arg=button.element_handle())
    with page.expect_download() as download:
        button.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    [*_, newest] = actions.list_loras(home, run.id)
    assert saved.suffix == ".safetensors"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == newest.sha256


def test_an_empty_prompt_file_gets_a_clear_message(page, shots, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing here\n")
    page.locator(f"{by_id('new.upload')} input[type=file]").set_input_files(str(empty))
    message = page.get_by_text("empty.txt holds no prompts")
    message.first.wait_for()
    page.wait_for_timeout(600)  # let the message finish fading in
    page.screenshot(path=shots / "empty_prompts.png")
    assert "one prompt per line" in message.first.inner_text()
