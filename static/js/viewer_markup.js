// The viewer's markup, built once with DOM calls (no HTML strings): the toolbar, the graph region, the
// legend, the caption and the transport controls. Every page that plays a trace gets the same elements
// (the app, /s/{id}, /embed/{id}, the offline HTML file, the notebook output); text comes from i18n.js
// through the data-i18n* attributes that i18n.apply() fills.

const SVGNS = "http://www.w3.org/2000/svg";

/** An element with attributes (data-* and aria-* included) and children (strings become text). */
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function icon(d, cls = null, hidden = false) {
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  if (cls) svg.setAttribute("class", cls);
  if (hidden) svg.setAttribute("hidden", "");
  const p = document.createElementNS(SVGNS, "path");
  p.setAttribute("d", d);
  svg.appendChild(p);
  return svg;
}

const button = (id, attrs, ...children) => h("button", { type: "button", id, ...attrs }, ...children);
const iconButton = (id, key, d) => button(id, { class: "icon", "data-i18n-aria": key }, icon(d));

function toolbar({ exports, present }) {
  const bar = h(
    "div",
    { class: "graph-toolbar" },
    h("h2", { id: "graph-heading", class: "sr-only", "data-i18n": "graph.heading" }),
    h("span", { class: "toolbar-spacer" }),
    search(),
    button("zoom-out", { class: "icon", "data-i18n-aria": "graph.zoomOut" }, "−"),
    button("zoom-in", { class: "icon", "data-i18n-aria": "graph.zoomIn" }, "+"),
    button("fit", { "data-i18n": "graph.fit" }),
  );
  for (const kind of ["svg", "png", "html"].filter((k) => exports.includes(k))) {
    bar.append(button(`export-${kind}`, { class: "export", "data-i18n-title": `export.${kind}` }, kind.toUpperCase()));
  }
  if (present) {
    bar.append(
      button("present", { "data-i18n": "present.button", "data-i18n-title": "present.title", "aria-keyshortcuts": "P" }),
      // A drawn cross, not the character ✕: no font face is needed for it (the offline file inlines fonts per character).
      button("present-leave", { class: "icon present-leave", "data-i18n-aria": "present.leave" }, icon("M2.5 4 4 2.5l4 4 4-4L13.5 4l-4 4 4 4-1.5 1.5-4-4-4 4L2.5 12l4-4z")),
    );
  }
  bar.append(button("direction", { "data-i18n-aria": "graph.direction" }, "⇅"));
  return bar;
}

/** The search box (role searchbox, `/` focuses it) and the list of its results. */
function search() {
  const input = h("input", {
    type: "search", id: "search", class: "search", role: "searchbox", autocomplete: "off", spellcheck: "false",
    "data-i18n-aria": "search.label", "aria-controls": "search-results", "aria-keyshortcuts": "/",
  });
  return h("span", { class: "search-wrap" }, input, h("ul", { id: "search-results", class: "search-results", role: "listbox", "data-i18n-aria": "search.results", hidden: true }));
}

function legend() {
  const item = (cls, key) => h("li", {}, h("span", { class: `key ${cls}` }), h("span", { "data-i18n": key }));
  return h(
    "ul",
    { class: "legend-box", "aria-hidden": "true" },
    item("leaf", "legend.leaf"),
    item("op", "legend.op"),
    item("constant", "legend.constant"),
    item("fwd", "legend.forward"),
    item("bwd", "legend.backward"),
  );
}

function controls() {
  const options = (values) => values.map((v) => h("option", { value: v }, `${v}×`));
  return h(
    "div",
    { class: "controls", role: "group", "data-i18n-aria": "player.controls" },
    iconButton("first", "player.first", "M1 2h2v12H1zM9 2v12L3 8zM15 2v12L9 8z"),
    iconButton("back", "player.back", "M2 2h2v12H2zM13 2v12L5 8z"),
    button("play", { class: "icon play", "data-i18n-aria": "player.play" }, icon("M4 2v12l10-6z", "i-play"), icon("M3 2h4v12H3zM9 2h4v12H9z", "i-pause", true)),
    iconButton("forward", "player.forward", "M3 2v12l8-6zM12 2h2v12h-2z"),
    iconButton("last", "player.last", "M1 2v12l6-6zM7 2v12l6-6zM13 2h2v12h-2z"),
    h("input", { type: "range", id: "scrubber", min: 0, max: 0, value: 0, step: 1, "data-i18n-aria": "player.scrubber" }),
    h("output", { id: "step-label", class: "step-label", for: "scrubber" }, "0 / 0"),
    h("label", { class: "inline" }, h("span", { "data-i18n": "player.speed" }), h("select", { id: "speed" }, ...options([1, 2, 4, 8, 30, 120]))),
    h("label", { class: "inline" }, h("span", { class: "sr-only", "data-i18n": "player.jump" }), h("select", { id: "jump" })), // its prompt says it
    h(
      "label",
      { class: "inline step-by", hidden: true },
      h("span", { "data-i18n": "player.stepBy" }),
      h("select", { id: "step-by" }, h("option", { value: "op", "data-i18n": "player.stepByOp" }), h("option", { value: "box", "data-i18n": "player.stepByBox" })),
    ),
  );
}

/**
 * Fill `pane` (a section.graph-pane) with the viewer's elements; `exports` lists the download buttons
 * ("svg", "png", "html"), `present` adds the presentation ones. Returns a lookup by id inside the pane.
 */
export function buildViewer(pane, { exports = [], present = false } = {}) {
  pane.classList.add("graph-pane");
  pane.setAttribute("aria-labelledby", "graph-heading");
  // The pass label sits over the graph's top-left corner (the toolbar has no room for it beside the tools).
  const graph = h(
    "div",
    { id: "graph", class: "graph", tabindex: 0, "data-i18n-aria": "graph.region" },
    h("p", { id: "graph-empty", class: "graph-empty", "data-i18n": "graph.empty" }),
    h("span", { id: "pass-label", class: "pass-label", "aria-live": "polite" }),
  );
  // The training loop's curves (chart.js), shown only for a trace that has one.
  const curves = h("div", { id: "curves", class: "curves", role: "group", "data-i18n-aria": "chart.label", hidden: true });
  pane.replaceChildren(toolbar({ exports, present }), graph, curves, legend(), h("p", { id: "caption", class: "caption", "aria-live": "polite" }), controls());
  const byId = new Map();
  return (id) => byId.get(id) ?? byId.set(id, pane.querySelector(`#${CSS.escape(id)}`)).get(id);
}
