// Light or dark: ?theme=light|dark (embeds) wins, then the student's stored choice, then the system's
// prefers-color-scheme. Only the toggle stores a choice. The palette itself lives in app.css.

const KEY = "gradwalk.theme";
const valid = (v) => (v === "light" || v === "dark" ? v : null);

function stored() {
  try {
    return valid(localStorage.getItem(KEY));
  } catch {
    return null;
  }
}

const system = () => (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");

/** The theme in force, set as <html data-theme>, with the color-scheme meta to match. */
export function current() {
  return document.documentElement.dataset.theme === "dark" ? "dark" : "light";
}

function set(theme) {
  document.documentElement.dataset.theme = theme;
  document.querySelector('meta[name="color-scheme"]')?.setAttribute("content", theme);
}

/** Apply the theme now and follow the system until a choice is made; `onChange` hears every switch. */
export function init({ onChange = () => {} } = {}) {
  const fromUrl = valid(new URL(location.href).searchParams.get("theme"));
  set(fromUrl ?? stored() ?? system());
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    if (!fromUrl && !stored()) (set(system()), onChange(current()));
  });
}

/** Switch and remember. */
export function toggle() {
  const next = current() === "dark" ? "light" : "dark";
  set(next);
  try {
    localStorage.setItem(KEY, next);
  } catch {
    /* not persisted: this page still switches */
  }
  return next;
}
