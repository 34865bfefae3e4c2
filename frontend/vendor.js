// Third-party code the page uses, bundled by esbuild into static/dist/vendor.js (never committed).
export { EditorView, basicSetup } from "codemirror";
export { EditorState, StateEffect, StateField, RangeSetBuilder, Compartment } from "@codemirror/state";
export { Decoration, WidgetType, keymap, lineNumbers } from "@codemirror/view";
export { python } from "@codemirror/lang-python";
export { default as katex } from "katex";
