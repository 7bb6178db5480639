"""ComfyUI's two workflow formats, converted with the server's /object_info:

- API format (what /prompt takes): {id: {"class_type", "inputs": {name: value | [source id, slot]}}}
- UI format (what the page saves and example_workflows/ holds): LiteGraph nodes with positions,
  `widgets_values` in the node's widget order, and a links table.

    python tests/comfy_nodes/workflow_format.py     # rewrite example_workflows/ from tests/comfy_nodes/workflows/

The examples are written once in API format (tests/comfy_nodes/workflows/<name>.json, with a
`_meta.pos` per node for the layout); the UI files are generated from them, and the tests check
that each UI file still converts back to its API twin.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
API_DIR = HERE / "workflows"
UI_DIR = REPO / "example_workflows"
# API-format files that have a UI twin in example_workflows/ (the others are test-only graphs).
EXAMPLES = ("tiny_train_status_compare", "sd3_lora_vs_base")
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def _inputs(info: dict) -> list[tuple[str, list]]:
    order = info.get("input_order") or {k: list(v) for k, v in info["input"].items()}
    return [(name, info["input"][kind][name]) for kind in ("required", "optional") for name in order.get(kind, [])]


def _is_widget(spec: list) -> bool:
    kind = spec[0]
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not (len(spec) > 1 and spec[1].get("forceInput"))


def _has_control(name: str, spec: list) -> bool:
    # The page adds a "control after generate" widget (its value stored right after the seed's)
    # when the input asks for one, or, unless it says otherwise, when it is named seed/noise_seed.
    options = spec[1] if len(spec) > 1 else {}
    if "control_after_generate" in options:
        return bool(options["control_after_generate"])
    return spec[0] == "INT" and name in ("seed", "noise_seed")


def api_to_ui(api: dict[str, dict], object_info: dict[str, dict]) -> dict[str, Any]:
    ids = {key: index for index, key in enumerate(api, start=1)}
    nodes, links = [], []
    for key, node in api.items():
        info = object_info[node["class_type"]]
        inputs, widgets = [], []
        for name, spec in _inputs(info):
            value = node["inputs"].get(name)
            linked = isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and value[0] in api
            entry = None
            if linked:
                source = api[value[0]]["class_type"]
                link_type = object_info[source]["output"][value[1]]
                links.append([len(links) + 1, ids[value[0]], value[1], ids[key], len(inputs), link_type])
                entry = {"name": name, "type": "COMBO" if isinstance(spec[0], list) else spec[0], "link": len(links)}
            elif not _is_widget(spec):
                entry = {"name": name, "type": spec[0], "link": None}
            if _is_widget(spec):
                if entry is not None:
                    entry["widget"] = {"name": name}
                default = spec[1].get("default") if len(spec) > 1 else None
                widgets.append(value if not linked and value is not None else default)
                if _has_control(name, spec):
                    widgets.append("fixed")
            if entry is not None:
                inputs.append(entry)
        outputs = [
            {"name": name, "type": kind, "links": [], "slot_index": slot}
            for slot, (name, kind) in enumerate(zip(info["output_name"], info["output"], strict=True))
        ]
        nodes.append({
            "id": ids[key], "type": node["class_type"], "pos": node.get("_meta", {}).get("pos", [0, 0]),
            "size": node.get("_meta", {}).get("size", [320, 60 + 28 * len(widgets)]), "flags": {}, "order": ids[key] - 1,
            "mode": 0, "inputs": inputs, "outputs": outputs, "properties": {"Node name for S&R": node["class_type"]},
            "widgets_values": widgets, **({"title": node["_meta"]["title"]} if "title" in node.get("_meta", {}) else {}),
        })  # fmt: skip
    for link_id, source, slot, _target, _target_slot, _kind in links:
        nodes[source - 1]["outputs"][slot]["links"].append(link_id)
    return {
        "last_node_id": len(nodes), "last_link_id": len(links), "nodes": nodes, "links": links,
        "groups": [], "config": {}, "extra": {}, "version": 0.4,
    }  # fmt: skip


def ui_to_api(ui: dict[str, Any], object_info: dict[str, dict]) -> dict[str, dict]:
    """What the page sends to /prompt for a UI-format workflow (node ids become strings)."""
    links = {link[0]: link for link in ui["links"]}
    api = {}
    for node in ui["nodes"]:
        info = object_info[node["type"]]
        by_name = {entry["name"]: entry for entry in node.get("inputs", [])}
        values = list(node.get("widgets_values", []))
        inputs: dict[str, Any] = {}
        for name, spec in _inputs(info):
            entry = by_name.get(name)
            if _is_widget(spec):
                value = values.pop(0)
                if _has_control(name, spec):
                    values.pop(0)
                if entry is None or entry.get("link") is None:
                    inputs[name] = value
            if entry is not None and entry.get("link") is not None:
                link = links[entry["link"]]
                inputs[name] = [str(link[1]), link[2]]
        api[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return api


def without_meta(api: dict[str, dict]) -> dict[str, dict]:
    """An API-format graph with keys renumbered in order (as the UI file numbers them)."""
    ids = {key: str(index) for index, key in enumerate(api, start=1)}
    out = {}
    for key, node in api.items():
        inputs = {
            name: [ids[value[0]], value[1]]
            if isinstance(value, list) and len(value) == 2 and value[0] in api
            else value
            for name, value in node["inputs"].items()
        }
        out[ids[key]] = {"class_type": node["class_type"], "inputs": inputs}
    return out


def load_api(name: str) -> dict[str, dict]:
    return json.loads((API_DIR / f"{name}.json").read_text(encoding="utf-8"))


def main() -> int:
    sys.path.insert(0, str(HERE))
    from comfyui_harness import ComfyServer, prepare

    with tempfile.TemporaryDirectory() as base:
        (Path(base) / "custom_nodes").mkdir()
        (Path(base) / "custom_nodes" / "neighbor_grpo").symlink_to(REPO, target_is_directory=True)
        server = ComfyServer(prepare(), Path(base))
        try:
            object_info = server.wait_ready()
        finally:
            server.stop()
    UI_DIR.mkdir(exist_ok=True)
    for name in EXAMPLES:
        ui = api_to_ui(load_api(name), object_info)
        (UI_DIR / f"{name}.json").write_text(json.dumps(ui, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {UI_DIR / name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
