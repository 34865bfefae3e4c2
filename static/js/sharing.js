// The Share dialog: saves the program (POST /api/share) and offers its link and an iframe snippet that
// opens at the current step, each with a copy button. Everything shown is set as text or form values.

import { t } from "./i18n.js";

/**
 * A link as the API gave it (relative, or absolute on the server's public_url) made absolute against the
 * page's own origin: the link and the snippet are pasted into other sites, where a relative one breaks.
 */
export function absoluteUrl(url, origin) {
  return new URL(url, origin).href;
}

/** The iframe snippet for an absolute embed URL at a step (attribute values escaped, it is pasted as HTML). */
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
    this.saved = null; // {source, title, created} of the last share: reopening offers it again
    this.titleInput = dialog.querySelector("#share-title-input");
    this.createButton = dialog.querySelector("#share-create");
    dialog.querySelector("#share-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.create();
    });
    dialog.querySelector("#share-copy-link").addEventListener("click", (e) => copy(this.link, e.currentTarget));
    dialog.querySelector("#share-copy-embed").addEventListener("click", (e) => copy(this.embed, e.currentTarget));
    dialog.querySelector("#share-close").addEventListener("click", () => dialog.close());
  }

  /** Open the dialog for `source` (title prefilled); the snippet opens at `step`. */
  open({ source, step, title }) {
    this.source = source;
    this.step = step;
    this.status.hidden = true;
    const same = this.saved?.source === source;
    this.titleInput.value = same ? this.saved.title : title || "";
    this.result.hidden = !same;
    if (same) this._show(this.saved.created);
    this.el.showModal();
    this.titleInput.focus();
  }

  async create() {
    const source = this.source;
    const title = this.titleInput.value.trim();
    this.result.hidden = true;
    this.status.hidden = false;
    this.status.textContent = t("share.saving");
    this.status.classList.remove("error");
    this.createButton.disabled = true;
    try {
      const res = await fetch("/api/share", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(title ? { source, title } : { source }),
      });
      const body = await res.json().catch(() => null);
      if (!res.ok || !body?.url) throw new Error(body?.message || res.statusText);
      this.saved = { source, title, created: body };
      this._show(body);
    } catch (err) {
      this.status.textContent = t("share.failed", { message: err?.message || "" });
      this.status.classList.add("error");
    } finally {
      this.createButton.disabled = false;
    }
  }

  _show(created) {
    this.status.hidden = true;
    this.result.hidden = false;
    const origin = window.location.origin;
    this.link.value = absoluteUrl(created.url, origin);
    this.embed.value = embedSnippet(absoluteUrl(created.embed_url, origin), this.step, this.saved?.title || "gradwalk");
    this.embedLabel.textContent = t("share.embed", { n: this.step });
    this.el.dataset.shareId = created.id;
  }
}
