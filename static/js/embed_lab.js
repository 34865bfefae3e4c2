// The embed's Check and What if (issue 16): /embed/{id} keeps its graph and controls in front, and gets
// the app's inspector (with lab.js's Check and What if) as a drawer over the graph's right side. The
// toolbar's Check opens it and runs the check; a box clicked opens it on that box; its Close button or
// Escape closes it. Everything else is the page's: the Inspector, the Lab and the one Viewer.

import { t } from "./i18n.js";

const OPEN = "inspecting"; // the body's class while the drawer is shown

/** Bind the drawer `aside` (#inspector) of an embed to its viewer and lab. */
export function bindEmbedLab({ viewer, lab, aside }) {
  const body = document.body;
  const show = (on) => {
    if (body.classList.contains(OPEN) === on) return;
    body.classList.toggle(OPEN, on);
    if (!on) viewer.$("graph").focus({ preventScroll: true });
  };
  const check = document.createElement("button");
  Object.assign(check, { type: "button", id: "embed-check", title: t("check.title") });
  check.dataset.i18n = "check.short";
  check.dataset.i18nTitle = "check.title";
  check.textContent = t("check.short");
  check.addEventListener("click", async () => {
    show(true);
    check.disabled = true;
    try {
      await lab.runCheck();
    } finally {
      check.disabled = false;
    }
  });
  viewer.$("fit").before(check);
  const close = document.createElement("button");
  Object.assign(close, { type: "button", id: "inspector-close", className: "inspector-close" });
  close.dataset.i18n = "inspector.close";
  close.textContent = t("inspector.close");
  close.addEventListener("click", () => show(false));
  aside.querySelector("h2")?.after(close);
  viewer.$("graph").addEventListener("click", (e) => {
    if (e.target.closest?.("g.node[data-node-id]")) show(true);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && body.classList.contains(OPEN)) show(false);
  });
}
