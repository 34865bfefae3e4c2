// The numeric check (POST /api/check, Trace.check) read against the trace on screen: which leaf node each
// entry is about, and a one-line verdict per entry. Pure: lab.js and the inspector put it on the page.

/** Map node id -> [{pass, leaf}] for the check's entries, matched to `trace`'s nodes by id and label (else by
 * name and shape among its leaves: the check ran the same program, so ids agree unless its path differs). */
export function byNode(trace, check) {
  const out = new Map();
  if (!trace || !check) return out;
  const nodes = new Map(trace.nodes.map((n) => [n.id, n]));
  const leaves = trace.nodes.filter((n) => n.kind === "leaf");
  for (const pass of check.passes) {
    for (const leaf of pass.leaves) {
      let node = nodes.get(leaf.node);
      if (!node || node.label !== leaf.name) node = leaves.find((n) => n.label === leaf.name && JSON.stringify(n.shape) === JSON.stringify(leaf.shape));
      if (!node) continue;
      (out.get(node.id) ?? out.set(node.id, []).get(node.id)).push({ pass, leaf });
    }
  }
  return out;
}

/** "ok" (agrees), "bad" (disagrees), or "skipped". */
export const verdict = (leaf) => (leaf.ok === true ? "ok" : leaf.ok === false ? "bad" : "skipped");

/** How many entries agree, disagree, and were left out. */
export function summary(check) {
  const s = { ok: 0, bad: 0, skipped: 0 };
  for (const p of check?.passes ?? []) for (const l of p.leaves) s[verdict(l)]++;
  return s;
}
