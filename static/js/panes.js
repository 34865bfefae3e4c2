// On a narrow screen (app.css: up to NARROW_PX wide, a phone or an upright tablet) the page shows one
// pane at a time, chosen by tabs (templates/_tabs.html): the program, the graph, the inspector. On a
// wide screen the tabs are hidden and every pane is shown; the chosen one is kept for a narrow window.

export const NARROW_QUERY = "(max-width: 820px)"; // the same width as app.css's narrow layout

export class Panes {
  /** `app`: the <main class="app"> holding the tabs and panes; `initial`: "code" | "graph" | "inspector". */
  constructor(app, initial = "graph") {
    this.app = app;
    this.tabs = [...app.querySelectorAll(".pane-tabs [role=tab]")];
    for (const tab of this.tabs) tab.addEventListener("click", () => this.show(tab.dataset.pane));
    app.querySelector(".pane-tabs")?.addEventListener("keydown", (e) => this._arrows(e));
    this.show(initial);
  }

  get current() {
    return this.app.dataset.pane;
  }

  /** Is one pane at a time shown (a narrow screen)? */
  get narrow() {
    return matchMedia(NARROW_QUERY).matches;
  }

  show(pane) {
    this.app.dataset.pane = pane;
    for (const tab of this.tabs) {
      const on = tab.dataset.pane === pane;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
    }
  }

  // The tab list's keys (WAI-ARIA tabs): ← and → move between the tabs and show each.
  _arrows(e) {
    const i = this.tabs.findIndex((t) => t.dataset.pane === this.current);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: this.tabs.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    e.stopPropagation(); // not the player's ← and →
    const tab = this.tabs[(next + this.tabs.length) % this.tabs.length];
    this.show(tab.dataset.pane);
    tab.focus();
  }
}
