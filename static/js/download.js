// The page's own export buttons: the graph at the current step as SVG (svg_export.js, the same
// serializer as `gradwalk export`) or as PNG at 2× for slide software, and the whole animation as one
// offline HTML file (built by the server's app/export.py, as the CLI's), saved through a blob: link.

import { toSVG } from "./svg_export.js";

function save(blob, filename) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** `chart`: the training loop's curves (#curves), drawn under the graph when shown (svg_export.js). */
export async function downloadSVG(graph, basename, chart = {}) {
  save(new Blob([await toSVG(graph, chart)], { type: "image/svg+xml" }), `${basename}.svg`);
}

// An SVG drawn as an image starts loading its embedded fonts only as it paints, so the first PNG
// would have no text: load the same data: URLs here first, and the image finds them loaded.
async function loadFonts(svg) {
  const urls = [...svg.matchAll(/url\((data:font\/woff2;base64,[A-Za-z0-9+/=]+)\)/g)].map((m) => m[1]);
  await Promise.all(urls.map((u, i) => new FontFace(`gradwalk-export-${i}`, `url(${u})`).load()));
}

// The largest canvas Chromium (and Firefox) will encode: each side at most 32,767 px and at most
// 268 M px in all; beyond either, toBlob gives null (the "Overload resolution failed" of big graphs).
const CANVAS_MAX_SIDE = 32767;
const CANVAS_MAX_AREA = 268_435_456;

/** The scale for a w × h picture: `wanted`, or the largest the browser can encode (then less than wanted). */
export function pngScale(w, h, wanted = 2) {
  return Math.min(wanted, CANVAS_MAX_SIDE / w, CANVAS_MAX_SIDE / h, Math.sqrt(CANVAS_MAX_AREA / (w * h)));
}

/**
 * The SVG drawn on a canvas at 2× (img-src allows blob:, so no CSP exception is needed), or at the
 * largest scale the browser can encode for a big graph; resolves to the scale used (a smaller one is
 * tried if encoding still fails). Rejects when even that fails, so that the page can say so.
 */
export async function downloadPNG(graph, basename, chart = {}, scale = 2) {
  const svg = await toSVG(graph, chart);
  await loadFonts(svg);
  const url = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    let s = pngScale(img.naturalWidth, img.naturalHeight, scale);
    for (let tries = 0; tries < 4; tries++, s /= 2) {
      const blob = await draw(img, s);
      if (blob) {
        save(blob, `${basename}.png`);
        return s;
      }
    }
    throw new Error(`the picture (${img.naturalWidth} × ${img.naturalHeight} px) is too big for this browser to encode`);
  } finally {
    URL.revokeObjectURL(url);
  }
}

async function draw(img, s) {
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.floor(img.naturalWidth * s));
  canvas.height = Math.max(1, Math.floor(img.naturalHeight * s));
  const ctx = canvas.getContext("2d");
  if (!ctx) return null;
  ctx.scale(s, s);
  ctx.drawImage(img, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

/**
 * The one-file offline player of this trace, opening at `step`: a saved share's as stored
 * (GET /s/{id}/export.html), else the program run again on the server (POST /export.html).
 */
export async function downloadHTML({ shareId, source, step, lang, direction }, basename) {
  const options = { step, lang, direction };
  const res = shareId
    ? await fetch(`/s/${encodeURIComponent(shareId)}/export.html?${new URLSearchParams(options)}`)
    : await fetch("/export.html", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ source, ...options }),
      });
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    throw new Error(body?.message || res.statusText);
  }
  save(new Blob([await res.arrayBuffer()], { type: "text/html" }), `${basename}.html`);
}
