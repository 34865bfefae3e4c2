// Bundles the npm dependencies into static/dist/ (git-ignored): vendor.js (CodeMirror 6 + Python
// mode + KaTeX as one ES module), KaTeX's stylesheet with its woff2 fonts, and the page's own fonts
// (fonts.css + fonts/*.woff2), and Swagger UI for /docs, all served by the app.
import { build } from "esbuild";
import subsetFont from "subset-font";
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseRanges } from "../static/js/fonts.js";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "static", "dist");
mkdirSync(join(dist, "fonts"), { recursive: true });

await build({
  entryPoints: [join(here, "vendor.js")],
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  outfile: join(dist, "vendor.js"),
  legalComments: "linked",
});

// The exported page (app/export.py) inlines this bundle of static/js/standalone.js as a classic script.
// Its inspector's formulas take standalone_vendor.js (TeX as text, no KaTeX), not the page's vendor.js.
const offlineVendor = (path) => ({
  name: "offline-vendor",
  setup(b) {
    b.onResolve({ filter: /dist\/vendor\.js$/ }, () => (path ? { path } : { path: "katex", namespace: "none" }));
    b.onLoad({ filter: /.*/, namespace: "none" }, () => ({ contents: "export const katex = {};" }));
  },
});
const standalone = {
  entryPoints: [join(here, "..", "static", "js", "standalone.js")],
  bundle: true,
  format: "iife",
  minify: true,
  target: "es2020",
  outfile: join(dist, "standalone.js"),
  legalComments: "none",
  charset: "utf8", // the exported file is UTF-8
};
await build({ ...standalone, plugins: [offlineVendor(join(here, "standalone_vendor.js"))] });
// The characters our own code in that bundle may show (arrows, ∂, ▶ …: the same bundle without KaTeX,
// whose symbol tables hold Chinese too), for app/export.py to inline the fonts that draw them. Not
// full-width punctuation (caption.js's Chinese spacing): only Chinese text shows it, and that brings
// the Chinese face with it.
const own = await build({ ...standalone, plugins: [offlineVendor(null)], write: false });
const fullWidth = (n) => (n >= 0x3000 && n <= 0x303f) || (n >= 0xff00 && n <= 0xffef);
const ownChars = new Set([...own.outputFiles[0].text].filter((c) => c.codePointAt(0) > 127 && !fullWidth(c.codePointAt(0))));
writeFileSync(join(dist, "standalone.chars"), [...ownChars].sort().join(""));

// KaTeX: keep only the woff2 fonts (every browser we support reads them) so nothing else is fetched.
const katexDist = join(here, "node_modules", "katex", "dist");
for (const f of readdirSync(join(katexDist, "fonts"))) {
  if (f.endsWith(".woff2")) cpSync(join(katexDist, "fonts", f), join(dist, "fonts", f));
}
const css = readFileSync(join(katexDist, "katex.min.css"), "utf8").replace(
  /src:url\((fonts\/[^)]+\.woff2)\) format\("woff2"\)(,url\([^)]+\) format\("[a-z]+"\))*/g,
  'src:url($1) format("woff2")',
);
writeFileSync(join(dist, "katex.css"), css);

// The page's fonts, so that the page and its SVG exports (svg_export.js embeds the faces its text
// uses) look the same on every machine. static/dist/fonts.css has one @font-face per line, in the
// order a face is looked for; fonts.js reads it back in the page, app/export.py from fonts.json. Families, first match wins:
//   "gradwalk Symbols": the operator glyphs the graph draws that Noto's Latin/Greek slices lack
//     (∂ √ ← ⁿ ⁵ ᵀ …): DejaVu Sans cut down at build time to those blocks, a few kB;
//   "Noto Sans Variable" / "Noto Sans Mono Variable": text and numbers, one file per script, every weight;
//   "Noto Sans SC": Chinese (names, labels and the zh interface), in ~100 chunks loaded by unicode-range.
const modules = join(here, "node_modules");
const faces = [];
const face = (family, weight, file, range) =>
  faces.push(`@font-face{font-family:"${family}";font-style:normal;font-weight:${weight};font-display:swap;src:url(fonts/${file}) format("woff2");unicode-range:${range}}`);

const SYMBOLS = [[0x02b0, 0x02ff], [0x1d2c, 0x1d6a], [0x2070, 0x209f], [0x2190, 0x21ff], [0x2200, 0x22ff], [0x25a0, 0x25ff]];
const symbolText = SYMBOLS.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => String.fromCodePoint(a + i))).join("");
const dejavu = readFileSync(join(modules, "@fontsource", "dejavu-sans", "files", "dejavu-sans-latin-400-normal.woff2"));
writeFileSync(join(dist, "fonts", "gradwalk-symbols.woff2"), await subsetFont(dejavu, symbolText, { targetFormat: "woff2" }));
const hex = (n) => n.toString(16).toUpperCase().padStart(4, "0");
face("gradwalk Symbols", 400, "gradwalk-symbols.woff2", SYMBOLS.map(([a, b]) => `U+${hex(a)}-${hex(b)}`).join(","));

// Fontsource's own stylesheets say which file holds which characters; keep the woff2 and the normal style.
function fontsource(pkg, cssFile, family, keep = () => true) {
  const text = readFileSync(join(modules, pkg, cssFile), "utf8");
  for (const rule of text.match(/@font-face\s*{[^}]*}/g)) {
    if (!/font-style:\s*normal/.test(rule)) continue;
    const file = rule.match(/url\(\.\/files\/([^)]+\.woff2)\)/)[1];
    if (!keep(file)) continue;
    const weight = rule.match(/font-weight:\s*([^;]+);/)[1].trim();
    const range = rule.match(/unicode-range:\s*([^;]+);/)[1].replace(/\s+/g, "");
    cpSync(join(modules, pkg, "files", file), join(dist, "fonts", file));
    face(family, weight, file, range);
  }
}
fontsource("@fontsource-variable/noto-sans", "index.css", "Noto Sans Variable");
fontsource("@fontsource-variable/noto-sans-mono", "index.css", "Noto Sans Mono Variable");
// Only the Chinese chunks (noto-sans-sc-<n>-400-normal): Latin and the rest come from Noto Sans.
fontsource("@fontsource/noto-sans-sc", "400.css", "Noto Sans SC", (file) => /^noto-sans-sc-\d+-400-normal\.woff2$/.test(file));
writeFileSync(join(dist, "fonts.css"), faces.join("\n") + "\n");
// The same faces as data for app/export.py, their ranges parsed by the page's own parser (fonts.js): one reading of unicode-range.
const faceData = faces.map((rule) => ({ family: rule.match(/font-family:"([^"]+)"/)[1], ranges: parseRanges(rule.match(/unicode-range:([^;}]+)/)[1]), rule }));
writeFileSync(join(dist, "fonts.json"), JSON.stringify(faceData) + "\n");

// The API docs at /docs: Swagger UI's own bundle and stylesheet, served by the app (no CDN).
mkdirSync(join(dist, "swagger"), { recursive: true });
for (const f of ["swagger-ui-bundle.js", "swagger-ui.css"]) cpSync(join(modules, "swagger-ui-dist", f), join(dist, "swagger", f));
console.log(`static/dist: vendor.js, standalone.js, katex.css, fonts.css (${faces.length} faces), fonts/*.woff2, swagger/`);
