// fonts.js: which bundled faces an SVG's text needs, read from the real static/dist/fonts.css.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { facesFor, families, fontFace, parseRanges } from "../../static/js/fonts.js";

const css = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "static", "dist", "fonts.css");

/** The faces of fonts.css (one @font-face per line), as documentFaces() reads them in a page. */
function bundled() {
  assert.ok(existsSync(css), "static/dist/fonts.css is missing: run `make frontend`");
  return readFileSync(css, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((rule, i) => {
      const get = (p) => rule.match(new RegExp(`${p}:([^;}]+)`))[1];
      return fontFace({ family: get("font-family"), weight: get("font-weight"), unicodeRange: get("unicode-range"), src: get("src") }, i);
    });
}

const SANS = '"gradwalk Symbols", "Noto Sans Variable", "Noto Sans SC", sans-serif';
const MONO = '"gradwalk Symbols", "Noto Sans Mono Variable", "Noto Sans SC", monospace';
const run = (text, fontFamily = SANS, fontWeight = "400") => ({ text, fontFamily, fontWeight, fontStyle: "normal" });
const files = (faces) => faces.map((f) => f.src.match(/fonts\/([^)]+)\.woff2/)[1]);

test("parseRanges reads single points, ranges and wildcards", () => {
  assert.deepEqual(parseRanges("U+0-FF, U+131,u+4??"), [[0, 255], [0x131, 0x131], [0x400, 0x4ff]]);
  assert.deepEqual(families(`"Noto Sans", 'X Y', serif`), ["Noto Sans", "X Y", "serif"]);
});

test("Latin text needs only the Latin slice of each family it is drawn in", () => {
  const faces = bundled();
  assert.deepEqual(files(facesFor([run("w1 = ×"), run("grad 3", MONO, "600")], faces)), ["noto-sans-latin-wght-normal", "noto-sans-mono-latin-wght-normal"]);
});

test("operator glyphs Noto's slices lack come from the symbols face", () => {
  const picked = files(facesFor([run("∂ 3", MONO), run("xⁿ")], bundled()));
  assert.ok(picked.includes("gradwalk-symbols"), picked);
  assert.ok(!picked.some((f) => f.startsWith("noto-sans-sc")), picked);
});

test("Chinese names bring only the chunks that hold their characters", () => {
  const faces = bundled();
  const picked = facesFor([run("权重 = ×")], faces);
  const sc = picked.filter((f) => f.name === "Noto Sans SC");
  assert.ok(sc.length >= 1 && sc.length <= 2, files(sc));
  for (const ch of "权重") assert.ok(sc.some((f) => f.ranges.some(([a, b]) => ch.codePointAt(0) >= a && ch.codePointAt(0) <= b)), ch);
  assert.ok(faces.filter((f) => f.name === "Noto Sans SC").length > 50); // the rest stay out
});

test("of faces that overlap, the one declared last wins, as in the browser", () => {
  const a = fontFace({ family: "F", unicodeRange: "U+0-FF", src: "a" }, 0);
  const b = fontFace({ family: "F", unicodeRange: "U+41", src: "b" }, 1);
  assert.deepEqual(facesFor([run("A", "F")], [a, b]).map((f) => f.src), ["b"]);
  assert.deepEqual(facesFor([run("AB", "F")], [a, b]).map((f) => f.src), ["a", "b"]);
  const bold = fontFace({ family: "F", weight: "700", src: "bold" }, 2);
  assert.deepEqual(facesFor([run("A", "F", "650")], [a, bold]).map((f) => f.src), ["bold"]);
});

test("app/export.py reads the faces' ranges as this parser read them (static/dist/fonts.json)", (t) => {
  const path = new URL("../../static/dist/fonts.json", import.meta.url);
  if (!existsSync(path)) return t.skip("make frontend has not run");
  const faces = JSON.parse(readFileSync(path, "utf8"));
  assert.ok(faces.length > 50);
  for (const f of faces) assert.deepEqual(f.ranges, parseRanges(f.rule.match(/unicode-range:([^;}]+)/)[1]));
});
