// What the offline page (static/js/standalone.js) takes in place of static/dist/vendor.js: KaTeX only
// (no editor), writing MathML, which browsers draw without KaTeX's stylesheet and fonts, so the file
// needs neither. frontend/build.mjs points the standalone bundle's imports of vendor.js here.
import katexLib from "katex";

export const katex = {
  render: (tex, element, options) => katexLib.render(tex, element, { ...options, output: "mathml" }),
};
