// The interface's text in the page's language. The text itself is not here: it is app/i18n/<lang>.json,
// one table per language, which the server puts in the page (<script type="application/json" id="i18n">,
// app/i18n.page_data) and app/export.py in the offline file; tests hand it over with use().

let data = null; // {tables: {en, zh}, cookie: {name, max_age_s}}
let current = "en";

/** Take the tables from an object, or from the page's #i18n element (the language is set by setLang). */
export function use(given = null) {
  if (!given && typeof document !== "undefined") {
    const el = document.getElementById("i18n");
    if (el) given = JSON.parse(el.textContent);
  }
  data = given ?? { tables: {}, cookie: null };
  return data;
}

const tables = () => (data ?? use()).tables;

/** The current language's tables (and English), for a worker that lays out boxes around this text. */
export function snapshot() {
  const all = tables();
  return { lang: current, tables: { en: all.en, [current]: all[current] } };
}

/** A snapshot() taken in the page, used by a worker. */
export function adopt(snap) {
  use({ tables: snap.tables, cookie: null });
  setLang(snap.lang);
}

export function lang() {
  return current;
}

export function setLang(l) {
  current = l === "zh" ? "zh" : "en";
}

/** The string for `key` in the current language (else English, else the key), with {name} placeholders filled (as text). */
export function t(key, vars = {}) {
  const all = tables();
  const s = all[current]?.[key] ?? all.en?.[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

/** Whether the current language has a string for `key`. */
export function has(key) {
  return Boolean(tables()[current]?.[key]);
}

/** A trace hint in the current language: a translation by its hint_id, else the tracer's English. */
export function hint(hintId, english) {
  if (current !== "en" && hintId && has(`hint.${hintId}`)) return t(`hint.${hintId}`);
  return english ?? null;
}

/** Fill every element marked data-i18n (text) or data-i18n-aria (aria-label) under root. */
export function apply(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  document.documentElement.lang = current === "zh" ? "zh-Hans" : "en";
  document.documentElement.dataset.lang = current;
}

/** The language toggle's choice, for the server's next page (the cookie it reads; name and lifetime from app/i18n). */
export function persist() {
  const cookie = (data ?? use()).cookie;
  if (cookie) document.cookie = `${cookie.name}=${current}; path=/; max-age=${cookie.max_age_s}; samesite=lax`;
}
