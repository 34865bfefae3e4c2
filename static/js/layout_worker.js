// Lays out graphs off the main thread so the page never freezes on a big trace. Keeps the last few
// traces it was sent (by id), so that opening a group sends only the options.
import { adopt } from "./i18n.js";
import { layout } from "./layout.js";

const KEEP = 4;
const traces = new Map();

self.onmessage = (e) => {
  const { id, trace, traceId, options, strings } = e.data;
  try {
    if (strings) adopt(strings); // boxes are sized around the text they will show, in the page's language
    if (trace) {
      traces.set(traceId, trace);
      while (traces.size > KEEP) traces.delete(traces.keys().next().value);
    }
    const t = traces.get(traceId);
    if (!t) throw new Error("the layout worker no longer holds this trace");
    self.postMessage({ id, result: layout(t, options) });
  } catch (err) {
    self.postMessage({ id, error: String(err && err.message ? err.message : err) });
  }
};
