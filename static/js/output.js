// The output panel and the editor's problem notes: what the program printed and displayed, its
// warnings and error with their hints, in the order they happened up to the current step.
// outputItems() and problems() are pure; OutputPanel puts items in the page as text.

import * as i18n from "./i18n.js";
import { t } from "./i18n.js";
import { timeline } from "./timeline.js";

function firstSentence(s) {
  const i = s.indexOf(". ");
  return i > 0 && i < 160 ? s.slice(0, i + 1) : s.slice(0, 200);
}

/** The trace's warning record (with its hint) for a warning event. */
function warningInfo(trace, e) {
  const ws = trace.warnings || [];
  return ws.find((w) => w.line === e.line && w.message === e.text) || ws.find((w) => w.line === e.line) || null;
}

const interrupted = (trace) => trace.status !== "ok" && trace.status !== "error";

/** [{kind: print|display|warning|error|status|empty, text, hint}] shown at frame f. */
export function outputItems(trace, f) {
  const items = [];
  let printed = 0;
  for (const e of timeline(trace).slice(0, f.step + 1)) {
    if (e.type === "print") {
      items.push({ kind: "print", text: e.text ?? "" });
      printed++;
    } else if (e.type === "display") items.push({ kind: "display", text: e.text ?? "" });
    else if (e.type === "warning") {
      const w = warningInfo(trace, e);
      items.push({ kind: "warning", text: `${e.category || "Warning"}: ${firstSentence(e.text ?? "")}`, hint: i18n.hint(w?.hint_id, w?.hint) });
    }
  }
  if (!printed && f.last && trace.stdout) items.push({ kind: "print", text: trace.stdout });
  if (f.error) {
    const where = f.error.line ? ` (${t("output.line", { n: f.error.line })})` : "";
    items.push({ kind: "error", text: `${f.error.type || "Error"}${where}: ${f.error.message ?? f.error.text ?? ""}`, hint: i18n.hint(f.error.hint_id, f.error.hint) });
  }
  if (f.last && interrupted(trace)) items.push({ kind: "status", text: t(`status.${trace.status}`) });
  if (f.last && trace.truncated) items.push({ kind: "status", text: t("status.truncated", { notice: trace.notice || "" }) });
  if (!items.length) items.push({ kind: "empty", text: t("output.empty") });
  return items;
}

/** Notes for the editor, at their lines: the warnings reached so far and the error. */
export function problems(trace, f) {
  const out = [];
  f.warnings.forEach((e, i) => {
    const w = warningInfo(trace, e);
    out.push({ key: `w${i}`, kind: "warning", line: e.line, title: `${e.category || "Warning"}:`, text: firstSentence(e.text || ""), hint: i18n.hint(w?.hint_id, w?.hint) });
  });
  if (f.error) {
    out.push({ key: "e", kind: "error", line: f.error.line, title: `${f.error.type || "Error"}:`, text: f.error.message ?? f.error.text ?? "", hint: i18n.hint(f.error.hint_id, f.error.hint) });
  } else if (f.last && interrupted(trace)) {
    out.push({ key: "s", kind: "error", line: trace.error?.line ?? null, title: t(`status.${trace.status}`), text: "", hint: null });
  }
  return out;
}

const CLASS = { print: "out-print", display: "out-print out-display", warning: "out-warning", error: "out-error", status: "out-status", empty: "empty" };

export class OutputPanel {
  constructor(el) {
    this.el = el;
    this.key = "";
  }

  show(trace, f) {
    if (!this.el) return;
    const key = JSON.stringify([f.stdout.length, f.displays.length, f.warnings.length, !!f.error, f.last, i18n.lang()]);
    if (key === this.key) return;
    this.key = key;
    this.el.replaceChildren(...outputItems(trace, f).map((item) => this._item(item)));
    this.el.scrollTop = this.el.scrollHeight;
  }

  /** A message about the run itself (server busy, cancelled), replacing the output. */
  message(text) {
    if (!this.el) return;
    const div = this._item({ kind: "status", text });
    div.setAttribute("role", "alert");
    this.el.replaceChildren(div);
    this.key = "";
  }

  refresh() {
    this.key = "";
  }

  _item({ kind, text, hint }) {
    const div = document.createElement(kind === "print" || kind === "display" ? "pre" : "div");
    div.className = CLASS[kind];
    div.textContent = text;
    if (hint) {
      const h = document.createElement("span");
      h.className = "hint";
      h.textContent = hint;
      div.appendChild(h);
    }
    return div;
  }
}
