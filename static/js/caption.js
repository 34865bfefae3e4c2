// One sentence for the current step, in the page's language: the caption under the graph (and the
// screen reader's live region). Pure: a function of the trace and a frame.

import { t } from "./i18n.js";
import { opSymbol } from "./labels.js";
import { asShown, nodeIndex } from "./timeline.js";
import { fmtValue } from "./values.js";

export function describe(trace, f) {
  const nodes = nodeIndex(trace);
  const e = f.entry;
  const name = (id) => nodes.get(id)?.label ?? String(id);
  switch (e.type) {
    case "start":
      return t("caption.start");
    case "node": {
      const n = asShown(nodes.get(e.node), f);
      if (!n) return "";
      if (n.kind === "leaf") return t("caption.node.leaf", { name: n.label, rg: n.requires_grad ? t("caption.node.rg") : "" });
      if (n.kind === "constant") return t("caption.node.constant", { name: n.label });
      return t("caption.node.op", { name: n.name ? n.label : "", sym: opSymbol(n.op), op: n.op }).replace(/^(\S*) = /, (m, a) => (a ? m : ""));
    }
    case "print":
      return t("caption.print");
    case "display":
      return t("caption.display");
    case "warning":
      return t("caption.warning", { text: (e.text || "").split(". ")[0] });
    case "backward_start": {
      const p = (trace.passes || []).find((p) => p.index === e.pass);
      return t("caption.backward_start", { api: p?.api ?? "backward()", n: f.pass.number, of: f.pass.of, g: p?.gradient == null ? "1" : fmtValue(p.gradient) });
    }
    case "step": {
      const n = nodes.get(e.node);
      const g = fmtValue(f.flow.get(e.node));
      const parts = (f.received.get(e.node) || []).length;
      const fanin = parts > 1 ? " " + t("caption.step.fanin", { n: parts }) : "";
      if (n?.kind === "leaf") return t("caption.step.leaf", { name: n.label, g }) + fanin;
      const who = n?.name ? `${n.label} (${n.op})` : n?.op ?? "";
      return t("caption.step.op", { who, g }) + fanin;
    }
    case "backward_end":
      return t("caption.backward_end", { n: f.pass.number, of: f.pass.of });
    case "grad":
      return t("caption.grad", { name: name(e.node), g: fmtValue(e.value) });
    case "update":
      if (e.text === "requires_grad") return t("caption.requiresGrad", { name: name(e.node) });
      return t("caption.update", { name: name(e.node), v: fmtValue(e.value) });
    case "error":
      return t("caption.error");
    case "end":
      return t("caption.end");
    default:
      return "";
  }
}
