// The graph a GraphView (render.js) has painted, as one standalone SVG document: for exports (the
// exported HTML file, `gradwalk export --format svg|png`, and a page's own export button).

import { documentFaces, facesFor, fontFaceCSS } from "./fonts.js";

const SVGNS = "http://www.w3.org/2000/svg";
const INHERITED = ["fill", "fill-opacity", "stroke", "stroke-width", "stroke-dasharray", "stroke-opacity", "stroke-linecap", "stroke-linejoin", "font-family", "font-size", "font-style", "font-weight", "text-anchor"];
const OWN = { opacity: "1" };
export const MARGIN = 12; // px around the layout

/**
 * The graph as it is painted now, as one SVG document: every box and edge (a virtual graph's too),
 * the styles it needs inlined from the computed style (so no stylesheet is needed), in layout order,
 * without the view's pan and zoom, and the fonts its text uses embedded (fonts.js). Deterministic:
 * the same trace and step give the same bytes. `curves`: the Viewer's training-loop chart (#curves,
 * chart.js), drawn under the graph when it is shown.
 */
export async function toSVG(graph, { curves = null } = {}) {
  const { svg, runs } = serialize(graph, curves);
  const css = await fontFaceCSS(facesFor(runs, documentFaces()));
  if (!css) return svg;
  // The fonts go first, before the background: <style> is plain text here (no markup in CSS).
  const at = svg.indexOf(">", svg.indexOf("<svg")) + 1;
  return svg.slice(0, at) + `<style>${css}</style>` + svg.slice(at);
}

/** The SVG text (without fonts) and the text runs it draws, each with its computed font. */
function serialize(graph, curves) {
  const saved = { ...graph.view };
  const moved = graph.userMoved;
  // Zoomed out until the culling window covers the layout: every box and edge is in the DOM.
  const r = graph.container.getBoundingClientRect();
  graph.setView({ x: 0, y: 0, k: Math.min((r.width || 800) / (graph.layout.width + 1), (r.height || 600) / (graph.layout.height + 1), 1) });
  graph.svg.classList.remove("lod"); // far out, the page draws boxes without text
  // The end state of every transition and of the boxes gliding to their places (render.js's settleFrom,
  // web animations): what the picture shows once it has settled. CSS animations (pulses) may not end.
  for (const a of graph.svg.getAnimations({ subtree: true })) if (!("animationName" in a)) a.finish();
  try {
    const live = graph.svg;
    const { width, height } = graph.layout;
    const out = document.createElementNS(SVGNS, "svg");
    const w = Math.ceil(width) + 2 * MARGIN;
    const h = Math.ceil(height) + 2 * MARGIN;
    out.setAttribute("xmlns", SVGNS);
    out.setAttribute("width", String(w));
    out.setAttribute("height", String(h));
    out.setAttribute("viewBox", `${-MARGIN} ${-MARGIN} ${w} ${h}`);
    out.setAttribute("role", "img");
    out.setAttribute("aria-label", live.getAttribute("aria-label") || "autograd graph");
    const rootStyle = getComputedStyle(live);
    out.setAttribute("style", INHERITED.map((p) => `${p}: ${rootStyle.getPropertyValue(p)}`).join("; "));
    const bg = document.createElementNS(SVGNS, "rect");
    // The theme's graph background (light: #fbfcfd), so a dark export keeps its light text readable.
    const fill = getComputedStyle(graph.container).getPropertyValue("--graph-bg").trim() || "#fbfcfd";
    for (const [k, v] of Object.entries({ x: -MARGIN, y: -MARGIN, width: w, height: h, fill })) bg.setAttribute(k, String(v));
    out.appendChild(bg);
    const runs = [];
    const layer = (cls, els) => {
      const g = styled(live.querySelector(`:scope > .${cls}`), rootStyle, false);
      for (const e of els) if (e) appendStyled(g, e, getComputedStyle(live.querySelector(`:scope > .${cls}`)), runs);
      out.appendChild(g);
    };
    appendStyled(out, live.querySelector(":scope > defs"), rootStyle, runs);
    layer("frames", graph.frames.map((x) => x.g));
    layer("edges", graph.edgeEls.map((x) => x.el));
    layer("nodes", graph.things.map((x) => x.g));
    layer("edge-labels", [...graph.labelLayer.children]);
    if (curves && !curves.hidden) appendCurves(out, curves, rootStyle, runs);
    return { svg: '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(out) + "\n", runs };
  } finally {
    graph.setView(saved, moved);
  }
}

/** A shallow copy of a live element with its computed style as a style attribute (only what differs from its parent). */
function styled(el, parentStyle, withStyle = true) {
  const copy = document.createElementNS(SVGNS, el.localName);
  for (const a of el.attributes) {
    if (a.name === "style" || a.name === "tabindex" || a.name === "role" || a.name.startsWith("data-")) continue;
    copy.setAttribute(a.name, a.value);
  }
  if (withStyle) {
    const cs = getComputedStyle(el);
    const decl = [];
    for (const p of INHERITED) {
      const v = cs.getPropertyValue(p);
      if (v !== parentStyle.getPropertyValue(p)) decl.push(`${p}: ${v}`);
    }
    for (const [p, initial] of Object.entries(OWN)) {
      const v = cs.getPropertyValue(p);
      if (v !== initial) decl.push(`${p}: ${v}`);
    }
    if (decl.length) copy.setAttribute("style", decl.join("; "));
  }
  return copy;
}

function appendStyled(parent, el, parentStyle, runs) {
  const cs = getComputedStyle(el);
  if (cs.display === "none" || cs.visibility === "hidden") return;
  const copy = styled(el, parentStyle);
  for (const child of el.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) {
      copy.appendChild(document.createTextNode(child.data));
      runs.push({ text: child.data, fontFamily: cs.fontFamily, fontWeight: cs.fontWeight, fontStyle: cs.fontStyle });
    } else if (child.nodeType === Node.ELEMENT_NODE) appendStyled(copy, child, cs, runs);
  }
  parent.appendChild(copy);
}

const CURVE_GAP = 12; // px between the graph and the chart, and between the chart's panels

/**
 * The training loop's chart (chart.js's panels, its legend as text) as a strip under the graph, at 1 px
 * per unit of its panels' view box; the picture grows to hold it (wider too, if the graph is narrower).
 */
function appendCurves(out, curves, rootStyle, runs) {
  const [bx, by, bw, bh] = out.getAttribute("viewBox").split(" ").map(Number);
  const box = { x: bx, y: by, width: bw, height: bh };
  const top = box.y + box.height;
  const strip = document.createElementNS(SVGNS, "g");
  strip.setAttribute("class", "curves");
  let x = box.x + MARGIN;
  let bottom = top;
  for (const panel of curves.querySelectorAll(":scope > svg.curve")) {
    const [, , w, h] = panel.getAttribute("viewBox").split(" ").map(Number);
    const copy = styled(panel, rootStyle);
    for (const [k, v] of Object.entries({ x, y: top, width: w, height: h })) copy.setAttribute(k, String(v));
    const cs = getComputedStyle(panel);
    for (const child of panel.children) appendStyled(copy, child, cs, runs);
    for (const dot of copy.querySelectorAll("circle.now")) dot.setAttribute("r", "5"); // CSS `r` is not an attribute
    strip.appendChild(copy);
    x += w + CURVE_GAP;
    bottom = Math.max(bottom, top + h);
  }
  const legend = [...curves.querySelectorAll(".curve-legend li")];
  legend.forEach((li, i) => {
    const cs = getComputedStyle(li);
    const y = top + 20 + i * 15;
    const line = document.createElementNS(SVGNS, "line");
    for (const [k, v] of Object.entries({ x1: x, x2: x + 10, y1: y - 4, y2: y - 4, stroke: cs.color, "stroke-width": 3 })) line.setAttribute(k, String(v));
    const text = document.createElementNS(SVGNS, "text");
    for (const [k, v] of Object.entries({ x: x + 15, y, fill: cs.color, style: `font-family: ${cs.fontFamily}; font-size: ${cs.fontSize}` })) text.setAttribute(k, String(v));
    text.textContent = li.textContent;
    runs.push({ text: li.textContent, fontFamily: cs.fontFamily, fontWeight: cs.fontWeight, fontStyle: cs.fontStyle });
    strip.append(line, text);
    bottom = Math.max(bottom, y + 4);
  });
  const width = Math.max(box.width, x - box.x + (legend.length ? 15 + 8 * Math.max(...legend.map((li) => li.textContent.length)) : 0));
  const height = bottom + MARGIN - box.y;
  out.appendChild(strip);
  out.setAttribute("width", String(Math.ceil(width)));
  out.setAttribute("height", String(Math.ceil(height)));
  out.setAttribute("viewBox", `${box.x} ${box.y} ${Math.ceil(width)} ${Math.ceil(height)}`);
  const bg = out.querySelector(":scope > rect");
  bg.setAttribute("width", String(Math.ceil(width)));
  bg.setAttribute("height", String(Math.ceil(height)));
}
