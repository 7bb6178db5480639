// Neighbor GRPO nodes in the ComfyUI page: show each node's text report (run status, scores) on
// the node, and keep Run Status nodes current from the "ngrpo.progress" messages the server
// pushes while a run trains.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const TEXT_WIDGET = "ngrpo_report";
// Once a node has reported a run that ended, its full report stays; messages only show motion.
const ENDED = new Set(["finished", "failed", "cancelled", "interrupted"]);

function showText(node, text) {
  let widget = node.widgets?.find((w) => w.name === TEXT_WIDGET);
  if (!widget) {
    widget = ComfyWidgets.STRING(node, TEXT_WIDGET, ["STRING", { multiline: true }], app).widget;
    widget.serialize = false; // a report, not a setting: never saved into the workflow
    if (widget.inputEl) widget.inputEl.readOnly = true;
  }
  widget.value = text;
  node.setDirtyCanvas(true, true);
}

function progressLine(data) {
  const total = data.total ? `/${data.total}` : "";
  const reward = data.metrics?.reward;
  const shown = reward === undefined ? "" : `, reward ${reward.toFixed(4)}`;
  return `run ${data.run_id} (${data.name}): ${data.status}, iteration ${data.step}${total}${shown}`;
}

app.registerExtension({
  name: "neighbor_grpo.reports",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.name.startsWith("NGRPO_")) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      onExecuted?.apply(this, arguments);
      if (output?.ngrpo_run) this.ngrpoRun = output.ngrpo_run[0];
      this.ngrpoEnded = ENDED.has(output?.ngrpo_status?.[0]);
      if (output?.text) showText(this, output.text.join("\n"));
    };
  },
  async setup() {
    api.addEventListener("ngrpo.progress", ({ detail }) => {
      for (const node of app.graph._nodes) {
        if (node.type === "NGRPO_RunStatus" && node.ngrpoRun === detail.run_id && !node.ngrpoEnded) {
          showText(node, progressLine(detail));
        }
      }
    });
  },
});
