// The page's own export buttons: the graph at the current step as SVG (svg_export.js, the same
// serializer as `gradwalk export`) or as PNG at 2× for slide software, saved through a blob: link.

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

export async function downloadSVG(graph, basename) {
  save(new Blob([await toSVG(graph)], { type: "image/svg+xml" }), `${basename}.svg`);
}

/** The SVG drawn on a canvas at `scale`× (img-src allows blob:, so no CSP exception is needed). */
export async function downloadPNG(graph, basename, scale = 2) {
  const url = URL.createObjectURL(new Blob([await toSVG(graph)], { type: "image/svg+xml" }));
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = Math.ceil(img.naturalWidth * scale);
    canvas.height = Math.ceil(img.naturalHeight * scale);
    const ctx = canvas.getContext("2d");
    ctx.scale(scale, scale);
    ctx.drawImage(img, 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    save(blob, `${basename}.png`);
  } finally {
    URL.revokeObjectURL(url);
  }
}
