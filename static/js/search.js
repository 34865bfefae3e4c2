// Search: a box in the graph's toolbar (role searchbox; `/` focuses it) that finds nodes and modules by
// name, module path and operation (`w1`, `blocks.3.attn`, `Softmax`). `find` is pure (node --test);
// `SearchBox` shows the results as a listbox and hands the chosen one to the viewer, which opens the
// groups around it, centres it and selects it. Every result is text (textContent).

import { t } from "./i18n.js";
import { groupModel } from "./groups.js";
import { opBase, opSymbol } from "./labels.js";

const LIMIT = 12;
const cache = new WeakMap();

/** What can be found in a trace: [{kind: "node"|"group", id | key, texts: [lowercase strings], label, detail}]. */
export function searchIndex(trace) {
  const lang = typeof document === "undefined" ? "" : document.documentElement.lang;
  const cached = cache.get(trace);
  if (cached?.lang === lang) return cached.index;
  const index = [];
  const model = groupModel(trace);
  // Where a thing is when the program repeats it: the iteration of its loop, the call of its module.
  const where = (chain) => {
    const it = chain.map((k) => model.groups.get(k)).find((g) => g.kind === "iteration");
    return it ? t("group.iteration", { n: it.iteration }) : null;
  };
  for (const g of model.groups.values()) {
    const label = g.kind === "iteration" ? `${g.iteration}` : g.path;
    const detail = [g.className, where(model.chainOfKey(g.parent)), g.kind === "module" && g.call ? `#${g.call + 1}` : null].filter(Boolean).join(" · ");
    index.push({ kind: "group", key: g.key, group: g, label, detail, texts: [g.path, g.className, g.kind === "iteration" ? `iteration ${g.iteration}` : null].filter(Boolean).map((s) => s.toLowerCase()) });
  }
  for (const n of trace.nodes || []) {
    const names = [n.name, n.label, ...(n.names || []).map((b) => b.name), ...(n.outputs || []).map((o) => o.name)].filter(Boolean);
    const ops = n.op ? [n.op, opBase(n.op), opSymbol(n.op)] : [];
    const texts = [...new Set([...names, ...ops, n.module].filter(Boolean).map((s) => String(s).toLowerCase()))];
    index.push({ kind: "node", id: n.id, node: n, label: n.label ?? String(n.id), detail: [n.op, n.module, where(model.chainOf(n.id))].filter(Boolean).join(" · "), texts });
  }
  cache.set(trace, { lang, index });
  return index;
}

/** How well `q` (lowercase) matches one text: 4 whole, 3 start, 2 after a dot or underscore, 1 inside, 0 not. */
function score(text, q) {
  if (text === q) return 4;
  const at = text.indexOf(q);
  if (at < 0) return 0;
  if (at === 0) return 3;
  if (/[._\s]/.test(text[at - 1]) || text.endsWith(q)) return 2;
  return 1;
}

/** The best matches of `query` in the trace, modules before nodes at the same score, then in order. */
export function find(trace, query, limit = LIMIT) {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const hits = [];
  searchIndex(trace).forEach((entry, order) => {
    let best = 0;
    for (const text of entry.texts) best = Math.max(best, score(text, q));
    if (best) hits.push({ entry, best, order });
  });
  hits.sort((a, b) => b.best - a.best || (a.entry.kind === "group" ? 0 : 1) - (b.entry.kind === "group" ? 0 : 1) || a.order - b.order);
  return hits.slice(0, limit).map((h) => h.entry);
}

const h = (tag, attrs = {}, text = null) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
};

/** The search box and its results (a listbox under it); `onChoose(entry)` goes to the chosen one. */
export class SearchBox {
  constructor(input, list, { trace = () => null, onChoose = () => {} } = {}) {
    this.input = input;
    this.list = list;
    this.trace = trace;
    this.onChoose = onChoose;
    this.results = [];
    this.active = -1;
    input.addEventListener("input", () => this.update());
    input.addEventListener("keydown", (e) => this._key(e));
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    list.addEventListener("mousedown", (e) => e.preventDefault()); // keep the focus in the box
    list.addEventListener("click", (e) => {
      const li = e.target.closest("li[data-index]");
      if (li) this.choose(Number(li.dataset.index));
    });
  }

  update() {
    const trace = this.trace();
    this.results = trace ? find(trace, this.input.value) : [];
    this.active = this.results.length ? 0 : -1;
    this._render();
  }

  _render() {
    const items = this.results.map((r, i) => {
      const li = h("li", { role: "option", id: `search-option-${i}`, "data-index": String(i), "aria-selected": String(i === this.active) });
      const kind = r.kind === "group" ? t(`group.kind.${r.group.kind}`) : t(`inspector.kind.${r.node.kind}`);
      li.append(h("span", { class: "search-label" }, r.kind === "group" && r.group.kind === "iteration" ? t("group.iteration", { n: r.label }) : r.label));
      li.append(h("span", { class: "search-detail" }, [kind, r.detail].filter(Boolean).join(" · ")));
      return li;
    });
    if (!items.length && this.input.value.trim()) items.push(h("li", { class: "search-none", role: "option", "aria-disabled": "true" }, t("search.none")));
    this.list.replaceChildren(...items);
    this.list.hidden = !items.length;
    this.input.setAttribute("aria-expanded", String(!this.list.hidden));
    if (this.active >= 0) this.input.setAttribute("aria-activedescendant", `search-option-${this.active}`);
    else this.input.removeAttribute("aria-activedescendant");
  }

  _key(e) {
    const n = this.results.length;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (n) this.active = (this.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      this._render();
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (this.active >= 0) this.choose(this.active);
    } else if (e.key === "Escape") {
      e.preventDefault();
      this.close();
      this.input.blur();
    }
  }

  choose(i) {
    const entry = this.results[i];
    if (!entry) return;
    this.close();
    this.onChoose(entry);
  }

  close() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
  }
}
