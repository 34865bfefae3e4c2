// What the offline page (static/js/standalone.js) takes in place of static/dist/vendor.js: no editor and
// no KaTeX (its ~270 kB would take a notebook cell's output past its 400 kB budget): the inspector's
// formulas are shown as their TeX source, as text. frontend/build.mjs points the bundle's imports here.
export const katex = {
  render: (tex, element) => {
    const code = document.createElement("code");
    code.className = "tex";
    code.textContent = tex;
    element.replaceChildren(code);
  },
};
