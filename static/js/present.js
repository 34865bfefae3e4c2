// Presentation mode: the graph and a large caption fill the screen (Fullscreen API where allowed),
// B blacks the screen out and back, Esc (or leaving full screen) ends it. Stepping keys stay in main.js.

export class Presentation {
  constructor({ onChange = () => {} } = {}) {
    this.active = false;
    this.onChange = onChange;
    this.blank = document.getElementById("blackout");
    document.addEventListener("fullscreenchange", () => {
      if (this.active && this._wasFull && !document.fullscreenElement) this.leave();
    });
  }

  async enter() {
    if (this.active) return;
    this.active = true;
    this._wasFull = false;
    document.body.classList.add("presenting");
    this.onChange(true);
    try {
      if (document.fullscreenEnabled && !document.fullscreenElement) {
        await document.documentElement.requestFullscreen({ navigationUI: "hide" });
        this._wasFull = true; // the window's size changed: main.js fits again on resize
      }
    } catch {
      /* not allowed here (an iframe without allow="fullscreen"): the page still fills its window */
    }
  }

  leave() {
    if (!this.active) return;
    this.active = false;
    this.blackout(false);
    document.body.classList.remove("presenting");
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    this.onChange(false);
  }

  toggle() {
    return this.active ? this.leave() : this.enter();
  }

  /** Black the screen out (true), bring it back (false), or flip it (no argument). */
  blackout(on = this.blank?.hidden) {
    if (!this.blank) return;
    this.blank.hidden = !on;
    document.body.dataset.blackout = String(Boolean(on));
  }
}
