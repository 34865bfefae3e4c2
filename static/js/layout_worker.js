// Lays out graphs off the main thread so the page never freezes on a big trace.
import { layout } from "./layout.js";

self.onmessage = (e) => {
  const { id, trace, options } = e.data;
  try {
    self.postMessage({ id, result: layout(trace, options) });
  } catch (err) {
    self.postMessage({ id, error: String(err && err.message ? err.message : err) });
  }
};
