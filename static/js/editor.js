// The code editor: CodeMirror 6 with Python, line numbers, Ctrl/Cmd+Enter to run, the player's line
// highlights, and the program's errors and warnings shown under their lines (as text).

import { Decoration, EditorState, EditorView, StateEffect, StateField, WidgetType, basicSetup, keymap, python } from "../dist/vendor.js";

const setMarks = StateEffect.define();

class ProblemWidget extends WidgetType {
  constructor(p) {
    super();
    this.p = p;
  }
  eq(other) {
    return other.p.key === this.p.key;
  }
  toDOM() {
    const box = document.createElement("div");
    box.className = `cm-gw-problem ${this.p.kind}`;
    box.setAttribute("role", this.p.kind === "error" ? "alert" : "note");
    const what = document.createElement("span");
    what.className = "what";
    what.textContent = this.p.title;
    box.appendChild(what);
    if (this.p.text) box.appendChild(document.createTextNode(" " + this.p.text));
    if (this.p.hint) {
      const hint = document.createElement("span");
      hint.className = "hint";
      hint.textContent = this.p.hint;
      box.appendChild(hint);
    }
    return box;
  }
  ignoreEvent() {
    return true;
  }
}

const marks = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects) if (e.is(setMarks)) deco = e.value;
    if (tr.docChanged) deco = Decoration.none; // the marks belong to the program that ran
    return deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

export function createEditor(parent, { doc = "", onRun = () => {}, onChange = null, readOnly = false, label = "Python program" } = {}) {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        keymap.of([
          { key: "Mod-Enter", run: () => (onRun(), true), preventDefault: true },
        ]),
        basicSetup,
        python(),
        marks,
        EditorView.lineWrapping,
        EditorView.updateListener.of((u) => {
          if (u.docChanged && onChange) onChange(u.state.doc.toString());
        }),
        EditorState.readOnly.of(readOnly),
        EditorView.contentAttributes.of({ "aria-label": label }),
      ],
    }),
  });

  let lastKey = "";

  return {
    view,
    getSource: () => view.state.doc.toString(),
    setSource(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
      lastKey = "";
    },
    focus: () => view.focus(),
    /**
     * Highlight lines and show problems: {line, lineKind: "fwd"|"bwd", nodeLine, problems: [{line, kind, title, text, hint}]}
     */
    mark({ line = null, lineKind = "fwd", nodeLine = null, problems = [] }) {
      const key = JSON.stringify([line, lineKind, nodeLine, problems.map((p) => p.key)]);
      if (key === lastKey) return;
      lastKey = key;
      const doc = view.state.doc;
      const valid = (n) => Number.isInteger(n) && n >= 1 && n <= doc.lines;
      const ranges = [];
      const lineDeco = new Map();
      const addLine = (n, cls) => {
        if (!valid(n)) return;
        lineDeco.set(n, (lineDeco.get(n) ? lineDeco.get(n) + " " : "") + cls);
      };
      for (const p of problems) addLine(p.line, p.kind === "error" ? "cm-gw-error-line" : "cm-gw-warning-line");
      if (nodeLine !== null && nodeLine !== line) addLine(nodeLine, "cm-gw-node-line");
      addLine(line, lineKind === "bwd" ? "cm-gw-bwd-line" : "cm-gw-line");
      for (const [n, cls] of lineDeco) ranges.push(Decoration.line({ class: cls }).range(doc.line(n).from));
      for (const p of problems) {
        const n = valid(p.line) ? p.line : doc.lines;
        ranges.push(Decoration.widget({ widget: new ProblemWidget(p), block: true, side: 1 }).range(doc.line(n).to));
      }
      ranges.sort((a, b) => a.from - b.from || a.value.startSide - b.value.startSide);
      const effects = [setMarks.of(Decoration.set(ranges, true))];
      const focusLine = valid(line) ? line : valid(nodeLine) ? nodeLine : null;
      if (focusLine !== null) effects.push(EditorView.scrollIntoView(doc.line(focusLine).from, { y: "nearest" }));
      view.dispatch({ effects });
    },
  };
}
