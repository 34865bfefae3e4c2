"""Small screens. The page on a phone (390 x 844) and an upright tablet (768 x 1024), with touch: one
column, one pane at a time chosen by tabs, nothing wider than the screen, every control big enough for a
finger and not covered by anything, the graph panned with one finger and zoomed with two. A small embed
(640 x 360): fewer controls on one line, readable text, and with code=1 the program's lines numbered and
the running one lit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_page import wait_until

pytestmark = pytest.mark.slow

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
TABLET = {"viewport": {"width": 768, "height": 1024}, "has_touch": True, "is_mobile": True}
SCREENS = pytest.mark.parametrize("watched", [PHONE, TABLET], ids=["390x844", "768x1024"], indirect=True)
FINGER_PX = 44  # the smallest target a finger hits reliably (WCAG 2.5.5, Apple's HIG)
PANES = {"code": "#code-pane", "graph": "#viewer", "inspector": "#inspector"}
CHAIN = Path(__file__).resolve().parents[2] / "app" / "examples" / "seed_5_chain.py"


def shown_panes(page) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Which panes are on screen now, and their boxes."""
    return page.evaluate(
        """(panes) => Object.fromEntries(Object.entries(panes).map(([k, sel]) => {
            const r = document.querySelector(sel).getBoundingClientRect();
            return [k, r.width > 0 && r.height > 0 ? {left: r.left, width: r.width, top: r.top, height: r.height} : null];
        }))""",
        PANES,
    )


def untappable(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Every shown button, select and tab that a finger cannot hit: too small, off screen, or covered
    at its centre by something else (as the code pane covered a share link's toolbar)."""
    return page.evaluate(
        """(finger) => {
        const out = [];
        for (const e of document.querySelectorAll("button, select, a.button, [role=tab]")) {
          const r = e.getBoundingClientRect();
          if (!r.width || !r.height || getComputedStyle(e).visibility === "hidden" || e.closest("dialog:not([open])")) continue;
          const name = e.id || e.textContent.trim();
          if (r.width < finger || r.height < finger) out.push(`${name}: ${r.width.toFixed(0)}x${r.height.toFixed(0)} px`);
          if (r.left < 0 || r.top < 0 || r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5) out.push(`${name}: off screen`);
          const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
          if (!hit || !(e === hit || e.contains(hit))) out.push(`${name}: covered by ${hit?.id || hit?.className || hit?.tagName}`);
        }
        return out;
    }""",
        FINGER_PX,
    )


def box_in_view(page) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A box of the graph whose centre is on screen and not covered (by the map): its node id and centre."""
    found = page.evaluate(
        """() => {
        const g = document.getElementById("graph").getBoundingClientRect();
        for (const e of document.querySelectorAll("g.node[data-node-id]")) {
          const r = e.getBoundingClientRect();
          const [x, y] = [r.left + r.width / 2, r.top + r.height / 2];
          if (x > g.left && x < g.right && y > g.top && y < g.bottom && e.contains(document.elementFromPoint(x, y)))
            return {id: Number(e.dataset.nodeId), x, y};
        }
        return null;
    }"""
    )
    assert found, "no box on screen"
    return found


def fits_the_screen(page) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
    assert page.evaluate("document.documentElement.scrollHeight") <= page.evaluate("innerHeight"), "the page scrolls"
    panes = {k: v for k, v in shown_panes(page).items() if v}
    assert len(panes) == 1, panes  # one column: one pane at a time
    (box,) = panes.values()
    assert box["left"] == 0 and box["width"] == width, box


@SCREENS
def test_the_app_shows_one_pane_at_a_time_and_every_control_takes_a_finger(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    page.wait_for_selector(".cm-content")
    # A first visit: the program, its editor tall enough to read and edit, Run at hand.
    assert page.get_attribute("#tab-code", "aria-selected") == "true"
    fits_the_screen(page)
    assert page.locator("#editor").bounding_box()["height"] >= 150  # type: ignore[index]
    assert untappable(page) == []
    page.tap("#run")
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    # The run's result is its graph, laid out in the graph's own pane.
    assert page.get_attribute("#tab-graph", "aria-selected") == "true"
    page.tap("#play")  # pause the autoplay
    page.tap("#last")
    assert page.text_content("#pass-label") == "End of the program"
    fits_the_screen(page)
    assert untappable(page) == []
    graph = page.locator("#graph").bounding_box()
    # The graph is what the tab is for: most of an upright phone's height (347 of 844 px before its
    # toolbar and menus each took one line), beside the curves, the legend, the caption and the transport.
    assert graph and graph["height"] >= 0.45 * page.evaluate("innerHeight"), graph
    # A tapped box is inspected; the inspector is a tab away.
    box = box_in_view(page)
    page.touchscreen.tap(box["x"], box["y"])
    page.tap("#tab-inspector")
    fits_the_screen(page)
    assert page.is_visible("#inspector-body") and not page.is_visible("#inspector-empty")
    assert untappable(page) == []
    page.tap("#tab-code")
    fits_the_screen(page)
    watched.shot("code")


@SCREENS
def test_a_shared_link_opens_on_its_graph_with_the_toolbar_and_pass_label_uncovered(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open(share(watched.base)["url"])
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    assert page.get_attribute("#tab-graph", "aria-selected") == "true"
    for step in ("#forward", "#last"):  # the forward pass, then the end, where the pass label says so
        page.tap(step)
        label = page.locator("#pass-label")
        box = label.bounding_box()
        assert box and box["width"] > 20 and box["height"] > 10, (step, box)
        # The label lets clicks through to the graph it is drawn over: what is under it is the graph, not the code pane.
        hit = page.evaluate("(b) => document.elementFromPoint(b.x + 4, b.y + b.height / 2)?.closest('#graph')?.id", box)
        assert hit == "graph", hit
        fits_the_screen(page)
        assert untappable(page) == []
    for tab in ("code", "inspector", "graph"):
        page.tap(f"#tab-{tab}")
        fits_the_screen(page)
        assert untappable(page) == []
    page.tap("#tab-code")
    assert page.locator("#editor").bounding_box()["height"] >= 150  # type: ignore[index]
    assert page.locator("#editor .cm-lineNumbers").is_visible()


class Fingers:
    """Fingers on the screen, as the device sends them (CDP's touch events; Chromium makes pointer events of them)."""

    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.cdp = page.context.new_cdp_session(page)

    def __call__(self, kind: str, points: list[tuple[float, float]]) -> None:
        touch_points = [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]
        self.cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touch_points})


@pytest.mark.parametrize("watched", [PHONE], ids=["390x844"], indirect=True)
def test_one_finger_pans_the_graph_and_two_zoom_it_about_their_midpoint(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/?example=mlp_step")
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    page.tap("#play")
    view = lambda: page.evaluate("({...window.gradwalk.state.graph.view})")  # noqa: E731
    g = page.locator("#graph").bounding_box()
    assert g
    # An empty spot of the graph (no box under it) where a finger lands.
    spot = page.evaluate(
        """(g) => { for (let y = g.y + 20; y < g.y + g.height - 20; y += 10) for (let x = g.x + 20; x < g.x + g.width - 20; x += 10)
            if (document.elementFromPoint(x, y)?.id === "graph" || document.elementFromPoint(x, y)?.tagName === "svg") return [x, y]; }""",
        g,
    )
    assert spot, "no empty spot in the graph"
    x, y = spot
    touch = Fingers(page)
    # A finger that lands on a box and lifts without moving is a tap: the box is inspected, the view stays.
    before = view()
    box = box_in_view(page)
    touch("touchStart", [(box["x"], box["y"])])
    touch("touchEnd", [])
    wait_until(page, "!document.getElementById('inspector-body').hidden")
    assert view() == before
    touch("touchStart", [(x, y)])
    for i in range(1, 6):
        touch("touchMove", [(x - 12 * i, y + 8 * i)])
    touch("touchEnd", [])
    after = view()
    assert after["x"] == pytest.approx(before["x"] - 60, abs=1) and after["y"] == pytest.approx(before["y"] + 40, abs=1)
    assert after["k"] == before["k"]
    # Two fingers 60 px apart spread to 180 px: three times the zoom, the point between them kept in place.
    cx, cy = g["x"] + g["width"] / 2, g["y"] + g["height"] / 2
    k0 = after["k"]
    layout_point = ((cx - g["x"] - after["x"]) / k0, (cy - g["y"] - after["y"]) / k0)
    touch("touchStart", [(cx - 30, cy), (cx + 30, cy)])
    for d in (50, 70, 90):
        touch("touchMove", [(cx - d, cy), (cx + d, cy)])
    touch("touchEnd", [])
    pinched = view()
    assert pinched["k"] == pytest.approx(min(4, 3 * k0), rel=1e-3), (k0, pinched)
    assert (cx - g["x"] - pinched["x"]) / pinched["k"] == pytest.approx(layout_point[0], abs=0.5)
    assert (cy - g["y"] - pinched["y"]) / pinched["k"] == pytest.approx(layout_point[1], abs=0.5)


def share(base: str, program: Path = CHAIN) -> dict[str, str]:
    created = httpx.post(f"{base}/api/share", json={"source": program.read_text()}, timeout=60)
    assert created.status_code == 201, created.text
    return created.json()


def rows(page, selector: str) -> int:  # type: ignore[no-untyped-def]
    """How many lines the shown children of `selector` take."""
    return page.evaluate(
        """(sel) => new Set([...document.querySelector(sel).children].map((e) => e.getBoundingClientRect())
            .filter((r) => r.width && r.height).map((r) => Math.round(r.top + r.height / 2))).size""",
        selector,
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("code", [False, True], ids=["graph", "code"])
def test_a_small_embed_keeps_its_controls_on_one_line_and_its_text_readable(watched, lang: str, code: bool) -> None:  # type: ignore[no-untyped-def]
    embed = share(watched.base)["embed_url"]
    watched.page.set_viewport_size({"width": 640, "height": 360})  # a slide's embed, a course page's column
    page = watched.open(f"{embed}?lang={lang}" + ("&code=1" if code else ""))
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    backward = page.evaluate(
        """() => { const v = window.gradwalk.state; for (let i = 0; i < v.player.total; i++) { v.player.seek(i); if (v.frame.phase === "backward") return i; } }"""
    )
    for step in (3, backward + 2):  # the forward pass, then the backward pass with its longer label
        page.evaluate(f"window.gradwalk.seek({step})")
        assert page.evaluate("document.documentElement.scrollWidth") <= 640
        assert rows(page, ".graph-toolbar") == 1 and rows(page, ".controls") == 1, lang
        for hidden in ("#search", "#export-svg", "#direction", "#zoom-in", "#jump", "#speed"):
            assert not page.is_visible(hidden), hidden
        # Text as large as on the page: the boxes' smallest at least 11 px on screen, the caption 13.
        smallest = page.evaluate(
            """() => { const g = document.getElementById("graph").getBoundingClientRect(); const k = window.gradwalk.state.graph.view.k;
            return Math.min(...[...document.querySelectorAll("g.node text")].filter((t) => { const r = t.getBoundingClientRect();
              return r.width && r.right > g.left && r.left < g.right && r.bottom > g.top && r.top < g.bottom; })
              .map((t) => parseFloat(getComputedStyle(t).fontSize) * k)); }"""
        )
        assert 11 <= smallest < 100, smallest
        assert float(page.evaluate("getComputedStyle(document.getElementById('caption')).fontSize")[:-2]) >= 13
        # The whole sentence, on up to three lines (it was cut to one: "l3 (MulBackward0) receives [0.2, …").
        clipped = (
            "(c => c.scrollWidth > c.clientWidth + 1 || c.scrollHeight > c.clientHeight + 1)(document.getElementById('caption'))"
        )
        assert not page.evaluate(clipped), page.text_content("#caption")
        if not code:
            assert not page.is_visible("#embed-code")
            continue
        # The program with its line numbers, and the line the step runs lit as in the app.
        assert page.locator("#embed-code .cm-lineNumbers").is_visible()
        line = page.evaluate("window.gradwalk.state.frame.line")
        lit = page.locator("#embed-code .cm-line.cm-gw-line, #embed-code .cm-line.cm-gw-bwd-line")
        assert lit.count() == 1 and lit.is_visible()
        assert lit.inner_text() == CHAIN.read_text().splitlines()[line - 1]
    watched.shot(f"{lang}-{'code' if code else 'graph'}")


MLP = CHAIN.parent / "mlp_step.py"
SMALL_EMBED = {"viewport": {"width": 640, "height": 360}, "has_touch": True}
# How much of the caption's sentence is on screen: every line box of its text inside the caption's
# visible box and the window (a folded caption cuts the lines past its third: they are laid out below it).
CAPTION_SHOWN = """() => {
  const c = document.getElementById("caption"), box = c.getBoundingClientRect();
  const range = document.createRange();
  range.selectNodeContents(c);
  const lines = [...range.getClientRects()].filter((r) => r.width > 0 && r.height > 0);
  const inside = (r) => r.top >= Math.max(box.top, 0) - 1 && r.bottom <= Math.min(box.bottom, innerHeight) + 1;
  const tops = new Set(lines.map((r) => Math.round(r.top)));
  return {lines: tops.size, shown: new Set(lines.filter(inside).map((r) => Math.round(r.top))).size,
          text: c.textContent, expanded: c.getAttribute("aria-expanded"), scroll: document.documentElement.scrollWidth};
}"""


@pytest.mark.parametrize("watched", [SMALL_EMBED], ids=["640x360"], indirect=True)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_small_embeds_long_caption_opens_whole_on_a_tap(watched, lang: str) -> None:  # type: ignore[no-untyped-def]
    created = httpx.post(f"{watched.base}/api/share", json={"source": MLP.read_text()}, timeout=60)
    assert created.status_code == 201, created.text
    page = watched.open(f"{created.json()['embed_url']}?lang={lang}")
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    # Every step's sentence laid out at this size: the MLP's longest take more than the three lines shown folded.
    lengths = page.evaluate(
        f"""() => {{ const out = []; const p = window.gradwalk.state.player;
        for (let i = 0; i < p.total; i++) {{ p.seek(i); out.push([i, ({CAPTION_SHOWN})().lines]); }} return out; }}"""
    )
    long = sorted((s for s in lengths if s[1] > 3), key=lambda s: -s[1])[:3]
    assert long and long[0][1] >= 4, lengths
    for step, lines in long:
        page.evaluate(f"window.gradwalk.seek({step})")
        folded = page.evaluate(CAPTION_SHOWN)
        assert folded["lines"] == lines and folded["shown"] == 3 and folded["expanded"] == "false", folded
        page.locator("#caption").tap()
        opened = page.evaluate(CAPTION_SHOWN)
        assert opened["shown"] == opened["lines"] == lines, opened  # the whole sentence, on screen
        assert opened["expanded"] == "true" and opened["text"] == folded["text"] and opened["scroll"] <= 640
        # The transport still on one line (centres within 2 px: the open caption's height is fractional) and on screen.
        centres = page.evaluate(
            """() => [...document.querySelector(".controls").children].map((e) => e.getBoundingClientRect())
                .filter((r) => r.width && r.height).map((r) => [r.top + r.height / 2, r.bottom])"""
        )
        assert max(c for c, _ in centres) - min(c for c, _ in centres) < 2 and max(b for _, b in centres) <= 360, centres
        page.locator("#caption").tap()
        assert page.evaluate(CAPTION_SHOWN)["shown"] == 3
    # The keyboard opens it too (Enter on the focused caption), and a short sentence is no toggle.
    page.evaluate(f"window.gradwalk.seek({long[0][0]})")
    page.focus("#caption")
    page.keyboard.press("Enter")
    assert page.evaluate(CAPTION_SHOWN)["shown"] == long[0][1]
    short = min(lengths, key=lambda s: s[1])
    page.evaluate(f"window.gradwalk.seek({short[0]})")
    assert short[1] <= 3 and page.evaluate("document.getElementById('caption').getAttribute('role')") is None
    assert watched.errors == []
    watched.shot(f"mlp-caption-{lang}")


# Whether a menu shows its chosen option's text whole: the text, its padding and the arrow within the box.
CHOICE_FITS = """(id) => { const s = document.getElementById(id), cs = getComputedStyle(s);
  const c = document.createElement('canvas').getContext('2d'); c.font = `${cs.fontSize} ${cs.fontFamily}`;
  return c.measureText(s.selectedOptions[0].text).width + parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight) + 20 <= s.clientWidth; }"""
SMALL_PHONE = {"viewport": {"width": 360, "height": 740}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
TRAINING = CHAIN.parent / "training_loop.py"


@pytest.mark.parametrize("watched", [SMALL_PHONE], ids=["360x740"], indirect=True)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_small_phone_keeps_the_toolbar_and_the_transport_on_one_line_each(watched, lang: str) -> None:  # type: ignore[no-untyped-def]
    # A training loop's share (its curves shown) on a 360 px phone: the toolbar took two lines (⇅ alone on the
    # second) and the step counter went under the transport buttons, leaving the graph 161 of 740 px.
    page = watched.open(f"{share(watched.base, TRAINING)['url']}?lang={lang}")
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    assert page.is_visible("#curves")
    tops = """(sel) => [...new Set([...document.querySelectorAll(sel)].map((e) => e.getBoundingClientRect())
        .filter((r) => r.width > 1).map((r) => Math.round(r.top + r.height / 2)))]"""
    assert len(page.evaluate(tops, ".graph-toolbar > :is(button, .search-wrap)")) == 1
    assert (
        len(page.evaluate(tops, ".controls > :is(button, output)")) == 1
    )  # the scrubber; the transport and its counter; the menus
    fits_the_screen(page)
    assert untappable(page) == []
    assert page.locator("#search").bounding_box()["width"] >= 60  # type: ignore[index]
    # Each menu's choice whole ("by operatio" was cut at 360 px beside a speed menu with room to spare).
    for menu in ("speed", "jump", "step-by"):
        assert page.evaluate(CHOICE_FITS, menu), menu
    # No "/" key hint on a touch screen (in Chinese it was cut to "查找 ⁄" in the narrow box).
    assert page.get_attribute("#search", "placeholder") == {"en": "Search", "zh": "查找"}[lang]
    graph = page.locator("#graph").bounding_box()
    assert graph and graph["height"] >= 0.33 * 740, graph


@SCREENS
def test_search_results_open_on_the_screen(watched) -> None:  # type: ignore[no-untyped-def]
    # The list hung from the search box's right edge, as on a laptop where the box is at the toolbar's end;
    # on a phone the box is at its start, and the list went off the screen's left edge (x = -158 at 390 px).
    page = watched.open(share(watched.base)["url"])
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    page.tap("#search")
    page.keyboard.type("l")
    options = page.locator("#search-results [role=option]")
    options.first.wait_for()
    width = page.evaluate("innerWidth")
    for box in [page.locator("#search-results").bounding_box(), *(o.bounding_box() for o in options.all())]:
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    fits_the_screen(page)


@pytest.mark.parametrize("watched", [SMALL_PHONE], ids=["360x740"], indirect=True)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_training_loops_embed_on_a_small_phone_keeps_its_counter_and_curves_readable(watched, lang: str) -> None:  # type: ignore[no-untyped-def]
    # A course page's embed on a 360 px phone: the step counter was squeezed to three lines ("97", "/", "97")
    # beside the step menu, and the two curves shrank to 113 px wide beside their legend (75 for a GPT's).
    page = watched.open(f"{share(watched.base, TRAINING)['embed_url']}?lang={lang}")
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    page.keyboard.press("End")
    label = page.locator("#step-label").bounding_box()
    line = float(page.evaluate("getComputedStyle(document.getElementById('step-label')).lineHeight")[:-2])
    assert label and label["height"] < 1.5 * line, (label, line)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for chart in page.locator("#curves .curve").all():
        box = chart.bounding_box()
        assert box and box["width"] >= 150, box
