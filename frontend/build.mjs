// Bundles the npm dependencies into static/dist/ (git-ignored): vendor.js (CodeMirror 6 + Python
// mode + KaTeX as one ES module) and KaTeX's stylesheet with its woff2 fonts, served by the app.
import { build } from "esbuild";
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

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
await build({
  entryPoints: [join(here, "..", "static", "js", "standalone.js")],
  bundle: true,
  format: "iife",
  minify: true,
  target: "es2020",
  outfile: join(dist, "standalone.js"),
  legalComments: "none",
});

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
console.log("static/dist: vendor.js, standalone.js, katex.css, fonts/*.woff2");
