// The page's fonts as an exported SVG carries them: the @font-face rules of the document (static/dist/
// fonts.css, or the same rules inlined by app/export.py) that the SVG's text uses, each file as a
// data: URL, so the picture renders alike wherever it is opened. Only the faces a character of the
// text falls into are kept (the browser's own choice: the first family of the element's font-family
// whose unicode-range holds the character, then the nearest weight, then the face declared last), so
// a Latin-only graph carries two small files and a Chinese name adds only its chunk.

/** "U+0-FF,U+131,U+4??" -> [[0, 255], [305, 305], [1024, 1279]] */
export function parseRanges(text) {
  const out = [];
  for (const part of String(text || "").split(",")) {
    const m = part.trim().match(/^u\+([0-9a-f?]+)(?:-([0-9a-f]+))?$/i);
    if (!m) continue;
    if (m[1].includes("?")) out.push([parseInt(m[1].replace(/\?/g, "0"), 16), parseInt(m[1].replace(/\?/g, "f"), 16)]);
    else out.push([parseInt(m[1], 16), parseInt(m[2] ?? m[1], 16)]);
  }
  return out;
}

/** "100 900" or "bold" -> [lo, hi] */
function weightRange(text) {
  const named = { normal: 400, bold: 700 };
  const ws = String(text || "400").trim().split(/\s+/).map((w) => named[w] ?? Number(w));
  return [ws[0] || 400, ws[1] || ws[0] || 400];
}

/** A font-family list as names, without quotes: '"Noto Sans", serif' -> ["Noto Sans", "serif"] */
export function families(text) {
  return String(text || "")
    .split(",")
    .map((f) => f.trim().replace(/^["']|["']$/g, ""))
    .filter(Boolean);
}

/** One @font-face as data: {name, family (lower case, to match), style, weight: [lo, hi], ranges, src (URL), order}. */
export function fontFace({ family, style = "normal", weight = "400", unicodeRange = "", src }, order = 0) {
  const name = families(family)[0] || "";
  return { name, family: name.toLowerCase(), style: style || "normal", weight: weightRange(weight), ranges: parseRanges(unicodeRange || "U+0-10FFFF"), src, order };
}

const covers = (f, cp) => f.ranges.some(([a, b]) => cp >= a && cp <= b);
const distance = (f, w) => (w < f.weight[0] ? f.weight[0] - w : w > f.weight[1] ? w - f.weight[1] : 0);

/**
 * The faces that draw these runs of text ([{text, fontFamily, fontWeight, fontStyle}], as computed),
 * in the order of `faces`. Whitespace needs no face.
 */
export function facesFor(runs, faces) {
  const byFamily = new Map();
  for (const f of faces) {
    if (!byFamily.has(f.family)) byFamily.set(f.family, []);
    byFamily.get(f.family).push(f);
  }
  const picked = new Set();
  const seen = new Set();
  for (const run of runs) {
    const fams = families(run.fontFamily).map((f) => f.toLowerCase());
    const weight = Number(run.fontWeight) || 400;
    const style = run.fontStyle || "normal";
    for (const ch of run.text || "") {
      const cp = ch.codePointAt(0);
      const key = `${fams.join(",")}|${weight}|${style}|${cp}`;
      if (cp <= 32 || seen.has(key)) continue;
      seen.add(key);
      for (const fam of fams) {
        const candidates = (byFamily.get(fam) || []).filter((f) => covers(f, cp));
        if (!candidates.length) continue;
        const sameStyle = candidates.filter((f) => f.style === style);
        const pool = sameStyle.length ? sameStyle : candidates;
        // Nearest weight; of faces that overlap, the browser takes the one declared last.
        pool.sort((a, b) => distance(a, weight) - distance(b, weight) || b.order - a.order);
        picked.add(pool[0]);
        break;
      }
    }
  }
  return [...picked].sort((a, b) => a.order - b.order);
}

/** Every @font-face rule of the document, in order, with its src resolved to an absolute URL. */
export function documentFaces(doc = document) {
  const out = [];
  for (const sheet of doc.styleSheets) {
    let rules;
    try {
      rules = sheet.cssRules;
    } catch {
      continue; // another origin's stylesheet: not ours to read
    }
    for (const rule of rules) {
      if (rule.type !== CSSRule.FONT_FACE_RULE) continue;
      const s = rule.style;
      const m = s.getPropertyValue("src").match(/url\(\s*["']?([^"')]+)["']?\s*\)/);
      if (!m) continue;
      const src = m[1].startsWith("data:") ? m[1] : new URL(m[1], sheet.href || doc.baseURI).href;
      out.push(
        fontFace(
          {
            family: s.getPropertyValue("font-family"),
            style: s.getPropertyValue("font-style"),
            weight: s.getPropertyValue("font-weight"),
            unicodeRange: s.getPropertyValue("unicode-range"),
            src,
          },
          out.length,
        ),
      );
    }
  }
  return out;
}

const dataUrls = new Map(); // font URL -> data: URL, fetched once per page

async function dataUrl(src) {
  if (src.startsWith("data:")) return src;
  if (!dataUrls.has(src)) {
    const load = fetch(src)
      .then((r) => {
        if (!r.ok) throw new Error(`${src}: ${r.status}`);
        return r.arrayBuffer();
      })
      .then((buf) => {
        const bytes = new Uint8Array(buf);
        let bin = "";
        for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return "data:font/woff2;base64," + btoa(bin);
      });
    load.catch(() => dataUrls.delete(src));
    dataUrls.set(src, load);
  }
  return dataUrls.get(src);
}

const range = ([a, b]) => (a === b ? `U+${a.toString(16).toUpperCase()}` : `U+${a.toString(16).toUpperCase()}-${b.toString(16).toUpperCase()}`);

/** The @font-face rules for these faces, each file inlined as a data: URL. */
export async function fontFaceCSS(faces) {
  const urls = await Promise.all(faces.map((f) => dataUrl(f.src)));
  return faces
    .map((f, i) => {
      const weight = f.weight[0] === f.weight[1] ? `${f.weight[0]}` : `${f.weight[0]} ${f.weight[1]}`;
      return `@font-face{font-family:"${f.name}";font-style:${f.style};font-weight:${weight};src:url(${urls[i]}) format("woff2");unicode-range:${f.ranges.map(range).join(",")}}`;
    })
    .join("\n");
}
