// The only module that owns time: requestAnimationFrame for playback, the run's elapsed-time ticker,
// and the ?step=N in the URL. Everything it shows comes from frame(trace, step).

import { frame, timeline } from "./timeline.js";

const URL_DELAY_MS = 250;

export class Player {
  constructor({ onFrame, onState, urlState = true } = {}) {
    this.onFrame = onFrame || (() => {});
    this.onState = onState || (() => {});
    this.urlState = urlState; // false in the offline file (file:// history, shared copies of the file)
    this.trace = null;
    this.step = 0;
    this.total = 0;
    this.playing = false;
    this.speed = 2; // steps per second
    this._raf = 0;
    this._acc = 0;
    this._last = 0;
    this._urlTimer = 0;
  }

  load(trace, step = 0) {
    this.pause();
    this.trace = trace;
    this.total = timeline(trace).length;
    this.seek(step);
  }

  seek(step) {
    if (!this.trace) return;
    this.step = Math.max(0, Math.min(this.total - 1, Math.trunc(Number(step) || 0)));
    this.onFrame(frame(this.trace, this.step));
    this._syncUrl();
    this.onState(this);
  }

  stepBy(d) {
    this.pause();
    this.seek(this.step + d);
  }

  play() {
    if (!this.trace || this.playing) return;
    if (this.step >= this.total - 1) this.seek(0);
    this.playing = true;
    this._last = performance.now();
    this._acc = 0.999; // the first step shows at once
    this._raf = requestAnimationFrame((t) => this._tick(t));
    this.onState(this);
  }

  pause() {
    if (!this.playing) return;
    this.playing = false;
    cancelAnimationFrame(this._raf);
    this.onState(this);
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  setSpeed(stepsPerSecond) {
    this.speed = Math.max(0.25, Number(stepsPerSecond) || 2);
  }

  _tick(now) {
    if (!this.playing) return;
    this._acc += ((now - this._last) / 1000) * this.speed;
    this._last = now;
    if (this._acc >= 1) {
      const n = Math.floor(this._acc);
      this._acc -= n;
      this.seek(this.step + n);
      if (this.step >= this.total - 1) {
        this.pause();
        return;
      }
    }
    this._raf = requestAnimationFrame((t) => this._tick(t));
  }

  _syncUrl() {
    if (!this.urlState) return;
    clearTimeout(this._urlTimer);
    this._urlTimer = setTimeout(() => {
      const url = new URL(location.href);
      url.searchParams.set("step", String(this.step));
      history.replaceState(null, "", url);
    }, URL_DELAY_MS); // once the steps pause: Chromium throttles a page that rewrites its history too often
  }
}

/** The stepping keys every player page shares: arrows, a presenter's clicker (PageDown / PageUp), Space, Home/End. */
export function stepKeys(player) {
  return {
    ArrowRight: () => player.stepBy(1),
    ArrowLeft: () => player.stepBy(-1),
    PageDown: () => player.stepBy(1),
    PageUp: () => player.stepBy(-1),
    " ": () => player.toggle(),
    Home: () => (player.pause(), player.seek(0)),
    End: () => (player.pause(), player.seek(Infinity)),
  };
}

/** The transport controls every player page shares, found by id: play, back, forward, first, last, scrubber. */
export function bindButtons(player, byId) {
  byId("play").addEventListener("click", () => player.toggle());
  byId("back").addEventListener("click", () => player.stepBy(-1));
  byId("forward").addEventListener("click", () => player.stepBy(1));
  byId("first").addEventListener("click", () => (player.pause(), player.seek(0)));
  byId("last").addEventListener("click", () => (player.pause(), player.seek(Infinity)));
  byId("scrubber").addEventListener("input", (e) => (player.pause(), player.seek(Number(e.target.value))));
}

/** The step requested by the page's URL, or null. */
export function urlStep() {
  const s = new URL(location.href).searchParams.get("step");
  return s !== null && /^\d+$/.test(s) ? Number(s) : null;
}

/** Call fn(seconds) every 100 ms until the returned stop() is called (the run's progress). */
export function ticker(fn) {
  const t0 = performance.now();
  fn(0);
  const id = setInterval(() => fn((performance.now() - t0) / 1000), 100);
  return () => clearInterval(id);
}

/** Two animation frames from now: the browser has painted what was just put in the DOM. */
export function afterPaint() {
  return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}
