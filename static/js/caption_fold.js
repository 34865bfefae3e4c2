// An embed's caption is folded to three lines (app.css: body.embed .caption) so that the graph keeps its
// room; a longer sentence (an MLP's backward steps take 4-7 lines in a 640 × 360 embed) opens whole on a
// tap, a click or Enter, and folds again on the next. Only a caption that is cut, or open, is a toggle
// (data-more, with its ▾/▴ mark and aria-expanded); the graph above gives up the room it takes while open.

const FOLDED_LINES = 3;

/** Make `caption` (the viewer's <p id="caption">) fold and open; `update()` after each new sentence. */
export function foldCaption(caption, { onToggle = () => {} } = {}) {
  const embedded = () => document.body.classList.contains("embed");
  let open = false;

  function update() {
    if (!embedded()) return;
    caption.removeAttribute("data-more"); // measured without the room its mark takes, so the answer does not depend on the last
    const style = getComputedStyle(caption);
    const padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
    const folded = FOLDED_LINES * parseFloat(style.lineHeight) + padding;
    // Cut: the sentence is taller than the box (folded); open: it would not fit in three lines.
    const more = open ? caption.scrollHeight > folded + 1 : caption.scrollHeight > caption.clientHeight + 1;
    caption.toggleAttribute("data-more", more);
    if (more) {
      caption.setAttribute("role", "button");
      caption.setAttribute("aria-expanded", String(open));
      caption.tabIndex = 0;
    } else {
      for (const a of ["role", "aria-expanded", "tabindex"]) caption.removeAttribute(a);
    }
  }

  function toggle() {
    if (!caption.hasAttribute("data-more")) return;
    open = !open;
    caption.classList.toggle("open", open);
    update();
    onToggle(open);
  }

  caption.addEventListener("click", toggle);
  caption.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !caption.hasAttribute("data-more")) return;
    e.preventDefault();
    e.stopPropagation(); // not the player's key
    toggle();
  });
  addEventListener("resize", update);
  return {
    update,
    get open() {
      return open;
    },
  };
}
