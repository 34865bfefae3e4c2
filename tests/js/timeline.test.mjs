import { test } from "node:test";
import assert from "node:assert/strict";
import { asShown, frame, membership, passStarts, timeline } from "../../static/js/timeline.js";
import { fixture, fixtureNames } from "./helpers.mjs";
import { num } from "../../static/js/values.js";

const close = (a, b) => {
  if (Array.isArray(a) || Array.isArray(b)) {
    assert.equal(a.length, b.length);
    a.forEach((x, i) => close(x, b[i]));
  } else if (Number.isNaN(num(a)) || Number.isNaN(num(b))) assert.ok(Number.isNaN(num(a)) && Number.isNaN(num(b)), `${a} != ${b}`);
  else assert.ok(Math.abs(num(a) - num(b)) < 1e-5 || num(a) === num(b), `${a} != ${b}`);
};

function stepsOf(trace, type) {
  return timeline(trace).flatMap((e, i) => (e.type === type ? [i] : []));
}

for (const name of fixtureNames()) {
  test(`${name}: the last frame shows every leaf's final .grad and all output`, () => {
    const trace = fixture(name);
    const f = frame(trace, Infinity);
    assert.ok(f.last);
    for (const n of trace.nodes.filter((n) => n.kind === "leaf" || n.retains_grad)) {
      if (n.grad === null) assert.equal(f.grads.get(n.id) ?? null, null, `${n.label}.grad is None`);
      else close(f.grads.get(n.id), n.grad);
    }
    assert.equal(f.stdout, trace.stdout);
    assert.deepEqual(new Set(f.present), new Set(trace.nodes.map((n) => n.id)));
  });

  test(`${name}: frame is a pure function of (trace, step)`, () => {
    const trace = fixture(name);
    const n = timeline(trace).length;
    const direct = frame(trace, Math.floor(n / 2));
    frame(trace, n - 1);
    assert.deepEqual(frame(trace, Math.floor(n / 2)), direct);
    assert.deepEqual(frame(fixture(name), Math.floor(n / 2)), direct);
    assert.equal(frame(trace, -5).step, 0);
    assert.equal(frame(trace, 10 ** 9).step, n - 1);
    assert.equal(frame(trace, "3").step, Math.min(3, n - 1));
  });
}

test("Jacobian: a.grad after each of the three passes, and zero_() between them", () => {
  const trace = fixture("seed_4_jacobian");
  const a = trace.nodes.find((n) => n.name === "a").id;
  const ends = stepsOf(trace, "backward_end");
  assert.equal(ends.length, 3);
  [[2, 1, 0], [0, 1, 1], [0, 0, 27]].forEach((want, k) => {
    const f = frame(trace, ends[k]);
    close(f.grads.get(a), want);
    assert.equal(f.pass.number, k + 1);
    assert.equal(f.pass.of, 3);
  });
  const zero = stepsOf(trace, "grad")[0];
  close(frame(trace, zero).grads.get(a), [0, 0, 0]);
  assert.deepEqual(frame(trace, zero).current, [a]);
  assert.deepEqual(passStarts(trace).map((p) => p.pass), [0, 1, 2]);
});

test("Jacobian: fan-in at the leaf collects one gradient per use before its step sums them", () => {
  const trace = fixture("seed_4_jacobian");
  const a = trace.nodes.find((n) => n.name === "a").id;
  const uses = trace.edges.filter((e) => e.source === a).length;
  const leafStep = timeline(trace).findIndex((e) => e.type === "step" && e.node === a);
  const f = frame(trace, leafStep);
  assert.equal(f.received.get(a).length, uses);
  assert.deepEqual(f.current, [a]);
});

test("chain: forward lights nodes in order at their lines; backward pulses carry grad_inputs", () => {
  const trace = fixture("seed_5_chain");
  const byName = Object.fromEntries(trace.nodes.filter((n) => n.name).map((n) => [n.name, n]));
  const l3Created = timeline(trace).findIndex((e) => e.type === "node" && e.node === byName.l3.id);
  const f = frame(trace, l3Created);
  assert.equal(f.phase, "forward");
  assert.equal(f.line, byName.l3.line);
  assert.ok(f.present.includes(byName.l2.id) && !f.present.includes(byName.y.id));
  assert.equal(f.grads.size, 0);

  const l3Step = timeline(trace).findIndex((e) => e.type === "step" && e.node === byName.l3.id);
  const g = frame(trace, l3Step);
  assert.equal(g.phase, "backward");
  assert.equal(g.nodeLine, byName.l3.line);
  const toW2 = g.pulses.find((p) => p.source === byName.w2.id);
  close(toW2.grad, 6);
  assert.deepEqual(g.pulses.map((p) => p.target), [byName.l3.id, byName.l3.id]);
  close(g.flow.get(byName.l3.id), [0.2, 0.2, 0.2, 0.2, 0.2]);

  const last = frame(trace, Infinity);
  close(last.grads.get(byName.w1.id), 3);
  close(last.grads.get(byName.w2.id), 6);
  assert.equal(last.grads.has(byName.l1.id), false, "l1.grad stays None: not a leaf");
  assert.equal(last.warnings.length, 2);
});

test("output appears at the moment it was printed", () => {
  const trace = fixture("seed_4_jacobian");
  const prints = stepsOf(trace, "print");
  assert.equal(frame(trace, prints[0] - 1).stdout, "");
  assert.equal(frame(trace, prints[0]).stdout, "tensor([2., 1., 0.])\n");
});

test("update events change a leaf's shown value (optimizer.step)", () => {
  const trace = fixture("mlp_step");
  const ups = stepsOf(trace, "update");
  assert.ok(ups.length > 0);
  const e = timeline(trace)[ups[0]];
  assert.deepEqual(frame(trace, ups[0]).values.get(e.node), e.value);
  assert.equal(frame(trace, ups[0] - 1).values.has(e.node), false);
});

test("a trace with no story (syntax error) still ends on its error", () => {
  const trace = { status: "error", source: "x = (", nodes: [], edges: [], events: [], passes: [], stdout: "",
    warnings: [], error: { type: "SyntaxError", message: "'(' was never closed", line: 1, hint: null } };
  const t = timeline(trace);
  assert.deepEqual(t.map((e) => e.type), ["start", "error"]);
  const f = frame(trace, 1);
  assert.equal(f.error.type, "SyntaxError");
  assert.equal(f.error.line, 1);
  assert.equal(f.line, 1);
  assert.equal(f.phase, "end");
});

test("requires_grad_() is an update without a value: the shown value stays", () => {
  const trace = { status: "ok", nodes: [{ id: 0, kind: "leaf", label: "a", value: [1, 2] }], edges: [], passes: [],
    events: [{ kind: "node", node: 0, line: 1 }, { kind: "update", node: 0, line: 2, text: "requires_grad", value: null }] };
  const f = frame(trace, 2);
  assert.equal(f.values.has(0), false);
  assert.deepEqual(f.current, [0]);
});

test("a tensor is shown as the constant it is until its requires_grad_(), then as a leaf", () => {
  const a = { id: 0, kind: "leaf", op: "AccumulateGrad", label: "a", requires_grad: true, value: [1, 2] };
  const b = { id: 1, kind: "leaf", op: "AccumulateGrad", label: "b", requires_grad: true, value: [3] };
  const trace = { status: "ok", nodes: [a, b], edges: [], passes: [],
    events: [{ kind: "node", node: 0, line: 1 }, { kind: "node", node: 1, line: 2 }, { kind: "update", node: 0, line: 3, text: "requires_grad", value: null }] };
  const before = frame(trace, 2);
  assert.equal(asShown(a, before).kind, "constant");
  assert.equal(asShown(a, before).requires_grad, false);
  assert.equal(asShown(b, before), b, "a leaf from the start is untouched");
  const after = frame(trace, 3);
  assert.equal(asShown(a, after), a);
  assert.equal(after.kinds.size, 0);
});

test("torch.autograd.grad leaves .grad alone; backward(inputs=[w]) fills only w.grad", () => {
  const trace = fixture("autograd_grad_inputs");
  const [x, w] = ["x", "w"].map((n) => trace.nodes.find((m) => m.name === n).id);
  const ends = timeline(trace).flatMap((e, i) => (e.type === "backward_end" ? [i] : []));
  const first = frame(trace, ends[0]);
  assert.equal(first.grads.has(x), false);
  close(first.flow.get(x), [3, 3]);
  const second = frame(trace, ends[1]);
  assert.equal(second.grads.has(x), false);
  close(second.grads.get(w), 3);
});

test("a frame is the same whatever steps were asked for before it, and never changes afterwards", () => {
  // frame() carries on from the last state it made and from checkpoints: compare with a fresh replay
  // (a copy of the trace has none of them), forward, backward and in a random order, on every fixture
  // and on a long timeline (a fixture's moments repeated: past the checkpoints' spacing).
  const long = fixture("accumulate_and_zero");
  long.events = Array.from({ length: 100 }, () => long.events).flat();
  const fresh = (trace, i) => frame(structuredClone(trace), i);
  let seed = 7;
  const random = (n) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (const trace of [...fixtureNames().map(fixture), long]) {
    const n = timeline(trace).length;
    const sample = n > 200 ? [0, 1, 1023, 1024, 1025, 2047, 2048, 2049, n - 2, n - 1].filter((i) => i < n) : [...Array(n).keys()];
    const want = new Map(sample.map((i) => [i, fresh(trace, i)]));
    const held = frame(trace, sample[sample.length >> 1]);
    const orders = [[...Array(n).keys()], [...Array(n).keys()].reverse(), Array.from({ length: Math.min(n, 300) }, () => random(n))];
    for (const order of orders) {
      for (const i of order) {
        const f = frame(trace, i);
        if (want.has(i)) assert.deepStrictEqual(f, want.get(i), `step ${i} of ${n}`);
      }
    }
    assert.deepStrictEqual(held, want.get(sample[sample.length >> 1]), "a frame made earlier is unchanged");
  }
});

test("membership(trace, f) answers as the frame's own present and done lists, at every step", () => {
  const twice = fixture("accumulate_and_zero"); // a pass started again: its steps are shown the first time only
  twice.events = [...twice.events, ...twice.events];
  for (const [name, trace] of [...fixtureNames().map((n) => [n, fixture(n)]), ["twice", twice]]) {
    for (let i = 0; i < timeline(trace).length; i++) {
      const f = frame(trace, i);
      const { present, done } = membership(trace, f);
      for (const n of trace.nodes) {
        assert.equal(present.has(n.id), f.present.includes(n.id), `${name} step ${i}: node ${n.id} present`);
        if (f.phase === "backward") assert.equal(done.has(n.id), f.done.includes(n.id), `${name} step ${i}: node ${n.id} done`);
      }
    }
  }
});
