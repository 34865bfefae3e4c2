// The inspector's view of a group (a module call or a loop iteration): what it is, where its output
// goes, and each of its parameters with its .grad at the current frame, so that a closed box still
// shows what backward put in its weights. A parameter's name is a button to its own box.

import { t } from "./i18n.js";
import { groupModel } from "./groups.js";
import { count, groupLines } from "./labels.js";
import { groupWords } from "./render.js";
import { nodeIndex } from "./timeline.js";
import { fmtShape } from "./values.js";
import { h, matrix, stats } from "./inspector.js";

const PARAMS_MAX = 16; // parameters listed with their .grad; more are counted

export class GroupPanel {
  constructor(trace, key, { onNode = () => {} } = {}) {
    this.trace = trace;
    this.key = key;
    this.onNode = onNode;
    this.group = groupModel(trace).groups.get(key);
    this.params = [...new Set(this.group?.allParams ?? [])]; // its own and its modules' parameters
    this.shown = null; // the .grad values last shown, by identity (a new value is a new array)
  }

  /** The panel's elements at frame f, or null when nothing it shows changed. */
  render(f, force = false) {
    const g = this.group;
    if (!g) return [h("div", "muted", t("inspector.empty"))];
    // undefined: no .grad yet; null: a gradient too big for the trace to carry per step (its stats stand in).
    const grads = this.params.map((id) => (f.grads.has(id) ? f.grads.get(id) : undefined));
    const lang = document.documentElement.lang;
    if (!force && this.shown && this.shown.lang === lang && grads.every((v, i) => v === this.shown.grads[i])) return null;
    this.shown = { grads, lang };
    const nodes = nodeIndex(this.trace);
    const lines = groupLines(g, nodes, groupWords());
    return [h("h3", null, lines.title), h("div", "muted", t(`group.kind.${g.kind}`)), this._facts(g, lines), ...this._params(g, grads, nodes)];
  }

  _facts(g, lines) {
    const dl = h("dl");
    const fact = (k, v) => dl.append(h("dt", null, k), h("dd", null, v));
    if (g.path) fact(t("inspector.module"), g.path);
    if (g.kind === "module" && g.call > 0) fact(t("inspector.call"), String(g.call + 1));
    if (g.loop) fact(t("inspector.line"), String(g.loop));
    if (lines.value) fact(t("inspector.summary"), lines.value);
    fact(t("inspector.ops"), count(g.ops));
    return dl;
  }

  _params(g, grads, nodes) {
    if (!this.params.length) return [];
    const out = [h("h4", null, t("inspector.params", { n: this.params.length }))];
    this.params.slice(0, PARAMS_MAX).forEach((id, i) => {
      const n = nodes.get(id);
      const row = h("div", "param");
      const name = h("button", "link", n?.label ?? String(id));
      name.type = "button";
      name.dataset.goto = String(id);
      name.addEventListener("click", () => this.onNode(id));
      row.append(name, h("span", "muted", ` ${fmtShape(n?.shape ?? [])} · .grad`));
      out.push(row);
      if (grads[i] === undefined) out.push(h("div", "muted", t("inspector.gradNone")));
      else if (grads[i] !== null) out.push(matrix(grads[i], "grad now"));
      else if (n?.grad_stats) out.push(stats(n.grad_stats));
    });
    if (this.params.length > PARAMS_MAX) out.push(h("div", "muted", t("inspector.more", { n: this.params.length - PARAMS_MAX })));
    return out;
  }
}
