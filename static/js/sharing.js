// The Share dialog: saves the program (POST /api/share) and offers its link and an iframe snippet that
// opens at the current step, each with a copy button. Everything shown is set as text or form values.

import { t } from "./i18n.js";

/** The iframe snippet for an embed URL at a step (attribute values escaped, it is pasted as HTML). */
export function embedSnippet(embedUrl, step, title = "gradwalk") {
  const u = new URL(embedUrl);
  u.searchParams.set("step", String(step));
  const attr = (s) => String(s).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  return `<iframe src="${attr(u.href)}" width="960" height="540" style="border:0" title="${attr(title)}" allow="fullscreen" loading="lazy"></iframe>`;
}

async function copy(field, button) {
  const text = field.value;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = t("share.copied");
  } catch {
    // No clipboard permission (or an insecure origin): select it for Ctrl+C instead.
    field.focus();
    field.select();
    button.textContent = t("share.copyManual");
  }
  setTimeout(() => (button.textContent = t("share.copy")), 2500);
}

export class ShareDialog {
  constructor(dialog) {
    this.el = dialog;
    this.status = dialog.querySelector("#share-status");
    this.link = dialog.querySelector("#share-link");
    this.embed = dialog.querySelector("#share-embed");
    this.embedLabel = dialog.querySelector("#share-embed-label");
    this.result = dialog.querySelector("#share-result");
    this.saved = null; // {source, created} of the last share, so the same program is not saved twice
    dialog.querySelector("#share-copy-link").addEventListener("click", (e) => copy(this.link, e.currentTarget));
    dialog.querySelector("#share-copy-embed").addEventListener("click", (e) => copy(this.embed, e.currentTarget));
    dialog.querySelector("#share-close").addEventListener("click", () => dialog.close());
  }

  /** Open the dialog, saving `source` unless it was just saved; the snippet opens at `step`. */
  async open({ source, step, title }) {
    this.el.showModal();
    this.step = step;
    this.title = title;
    if (this.saved?.source === source) return this._show(this.saved.created);
    this.result.hidden = true;
    this.status.hidden = false;
    this.status.textContent = t("share.saving");
    this.status.classList.remove("error");
    try {
      const res = await fetch("/api/share", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(title ? { source, title } : { source }),
      });
      const body = await res.json().catch(() => null);
      if (!res.ok || !body?.url) throw new Error(body?.message || res.statusText);
      this.saved = { source, created: body };
      this._show(body);
    } catch (err) {
      this.status.textContent = t("share.failed", { message: err?.message || "" });
      this.status.classList.add("error");
    }
  }

  _show(created) {
    this.status.hidden = true;
    this.result.hidden = false;
    this.link.value = created.url;
    this.embed.value = embedSnippet(created.embed_url, this.step, this.title || "gradwalk");
    this.embedLabel.textContent = t("share.embed", { n: this.step });
    this.el.dataset.shareId = created.id;
  }
}
