"""Benchmark the page in real Chromium, side by side with an earlier version of it in the same run.

    .venv/bin/python scripts/bench_page.py [--runs 3] [--baseline REV] [--big-steps 3990]

Traces come from the real tracer (in this process, not the sandbox: the page is what is measured) of
the programs in scripts/bench_page_programs.py: the seed's small graphs, issue 12's (a 50-step RNN,
36 x (Linear, LayerNorm, GELU), ~3,000 operations, a 12-block width-128 GPT-style training step), a
24-block GPT, recurrences of ~500 and ~5,000 nodes and one of ~20,000 (the max_nodes limit). Each
page (this tree's, and the baseline revision's, checked out with `git archive` into a temporary
directory) is served by its own app's page router and static files on a loopback port, under its
CSP, and gets the same JSON text. Measured per trace and page:
  first frame  trace received -> first complete frame painted (JSON.parse, layout in the worker, drawing)
  play fps     one step per animation frame from the middle of the timeline
  step ms      the page's own work for one step and the style and layout it causes (median)
  pan fps      one camera move per animation frame, across the graph (culling included)
  heap MB      the tab's JS heap after a garbage collection, with that trace shown
  at Fit       after loading: the zoom, the smallest box text in the pane on screen, the drawing's size
  open ms      opening a closed group (a module call or loop iteration) until it is painted: median of the
               first 5 drawn, each closed again before the next (a baseline without groups shows —)
Targets (issue 12): GPT first frame <= 500 ms, 20,000 nodes <= 1.5 s, opening a box <= 100 ms,
playing and panning >= 55 fps, box text at Fit >= 11 px, and the ~500- and ~5,000-node first frames
at least as good as the baseline's. The machine is noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.export import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from scripts.bench_page_programs import programs  # noqa: E402

# Playing: consecutive steps from the middle of the timeline, one per animation frame.
PLAY_JS = """async (count) => {
  const g = window.gradwalk, total = g.state.frame.total;
  const start = Math.max(0, Math.floor(total / 2) - (count >> 1));
  await new Promise((r) => requestAnimationFrame(r));
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    g.seek(Math.min(total - 1, start + i));
    await new Promise((r) => requestAnimationFrame(r));
  }
  return count / ((performance.now() - t0) / 1000);
}"""

# Stepping: the page's own work for one step (frame, painting, caption, inspector...) and the style and
# layout it causes, without waiting for the next animation frame: steadier than fps on a busy machine.
STEP_JS = """async (count) => {
  const g = window.gradwalk, total = g.state.frame.total;
  const start = Math.max(0, Math.floor(total / 2) - (count >> 1));
  const times = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    g.seek(Math.min(total - 1, start + i));
    void document.body.offsetHeight;
    times.push(performance.now() - t0);
    await new Promise((r) => requestAnimationFrame(r));
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}"""

# Panning: a drag across the graph at zoom 0.7, one move per animation frame (culling included).
PAN_JS = """async (frames) => {
  const stamps = [];
  for (let i = 0; i < frames; i++) {
    window.gradwalk.view(-i * 9, -i * 23, 0.7);
    stamps.push(await new Promise((r) => requestAnimationFrame(r)));
  }
  const gaps = stamps.slice(1).map((t, i) => t - stamps[i]).sort((a, b) => a - b);
  return 1000 / gaps[gaps.length >> 1];
}"""

# The picture at Fit right after loading (issue 12's "a layout that reads"): the zoom, the smallest text
# of the boxes in the pane on screen, the drawing's size at zoom 1 and how many boxes are drawn.
FIT_JS = """() => {
  const pane = document.getElementById('graph').getBoundingClientRect();
  const svg = document.querySelector('#graph g.nodes').ownerSVGElement;
  const w = svg.width.baseVal.value, h = svg.height.baseVal.value, k = svg.getBoundingClientRect().width / w;
  const px = [...svg.querySelectorAll('g.nodes text')].filter((t) => {
    const r = t.getBoundingClientRect();
    return t.textContent && r.width > 0 && r.right > pane.left && r.left < pane.right && r.bottom > pane.top && r.top < pane.bottom;
  }).map((t) => parseFloat(getComputedStyle(t).fontSize) * k);
  return { k, px: px.length ? Math.min(...px) : null, w, h, boxes: svg.querySelectorAll('g.nodes g.node').length };
}"""

# Opening closed groups (the first ones drawn), one at a time: time until the opened level is painted,
# then the group is closed again (not timed) so that each opening starts from the same picture. Median.
OPEN_JS = """async (count) => {
  const v = window.gradwalk.state, times = [];
  const painted = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  for (let i = 0; i < count; i++) {
    const box = v.graph.closed?.[i];
    if (!box) break;
    const t0 = performance.now();
    await v.toggle(box.gl.key, true);
    await painted();
    times.push(performance.now() - t0);
    await v.toggle(box.gl.key, false);
    await painted();
  }
  times.sort((a, b) => a - b);
  return times.length ? times[times.length >> 1] : null;
}"""

SERVER = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from app.routes import pages
try:
    from app.middleware import RequestContext
except ImportError:  # the baseline's layout: app/routes/middleware.py
    from app.routes.middleware import RequestContext
from app.config import Settings
app = FastAPI()
app.state.settings = Settings(_env_file=None)  # the pages read their settings from the app (a no-op for the baseline)
app.include_router(pages.router)
app.mount("/static", StaticFiles(directory={root!r} + "/static"), name="static")
app.add_middleware(RequestContext)
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(root: pathlib.Path):  # type: ignore[no-untyped-def]
    """The pages of the tree at `root` (its own app code, templates and static files) on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER.format(root=str(root), port=port)], cwd=root)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def baseline_tree(rev: str):  # type: ignore[no-untyped-def]
    """The app, templates and static files of revision `rev`, with this tree's built static/dist (vendor bundle, fonts)."""
    with tempfile.TemporaryDirectory(prefix="gradwalk-bench-") as tmp:
        archive = subprocess.run(
            ["git", "archive", rev, "app", "templates", "static"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        tar_path = pathlib.Path(tmp) / "tree.tar"
        tar_path.write_bytes(archive)
        with tarfile.open(tar_path) as tar:
            tar.extractall(tmp, filter="data")
        shutil.copytree(ROOT / "static" / "dist", pathlib.Path(tmp) / "static" / "dist", dirs_exist_ok=True)
        yield pathlib.Path(tmp)


def default_baseline() -> str:
    """The page before issue 12's work: the parent of the commit that added static/js/viewer.js."""
    out = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "static/js/viewer.js"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return f"{out[-1]}^" if out else "HEAD"


def traces(big_steps: int, only: list[str]) -> list[tuple[str, str]]:
    from app.config import Settings
    from app.tracer import trace_of

    limits = Settings(_env_file=None).trace  # type: ignore[call-arg]
    out = []
    for name, source in programs(big_steps):
        if only and not any(o in name for o in only):
            continue
        t = time.perf_counter()
        doc = trace_of(source, limits)
        print(f"  traced {name}: {len(doc.nodes)} nodes in {time.perf_counter() - t:.1f} s ({doc.status})", flush=True)
        out.append((name, doc.model_dump_json()))
    return out


def open_page(browser, url: str):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    page.errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    page.cdp = page.context.new_cdp_session(page)  # type: ignore[attr-defined]
    page.cdp.send("Performance.enable")  # type: ignore[attr-defined]
    page.goto(url)
    page.wait_for_selector("body[data-mode]")
    page.wait_for_timeout(500)
    return page


def heap_mb(page) -> float:  # type: ignore[no-untyped-def]
    page.cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in page.cdp.send("Performance.getMetrics")["metrics"]}
    return metrics.get("JSHeapUsedSize", 0) / 2**20


def measure(pages: dict, docs: list[tuple[str, str]], runs: int) -> dict[str, dict[str, dict[str, float | None]]]:  # type: ignore[type-arg]
    """Per trace, the old and the new page measured in turn (so that the machine's noise falls on both alike)."""
    out: dict[str, dict[str, dict[str, float | None]]] = {side: {} for side in pages}
    for name, text in docs:
        samples: dict[str, dict[str, list[float]]] = {side: {"first": [], "play": [], "step": [], "pan": []} for side in pages}
        for _ in range(runs):
            for side, page in pages.items():
                samples[side]["first"].append(page.evaluate("(t) => window.gradwalk.play(t)", text))
        fits = {}
        for side, page in pages.items():
            page.wait_for_timeout(400)  # Fit's glide, if any
            fits[side] = page.evaluate(FIT_JS)
        for _ in range(runs):
            for side, page in pages.items():
                samples[side]["play"].append(page.evaluate(PLAY_JS, 60))
                samples[side]["step"].append(page.evaluate(STEP_JS, 40))
                samples[side]["pan"].append(page.evaluate(PAN_JS, 60))
        for side, page in pages.items():
            row: dict[str, float | None] = {k: statistics.median(v) for k, v in samples[side].items()}
            row.update(heap=heap_mb(page), **{f"fit_{k}": v for k, v in fits[side].items()})
            has_toggle = page.evaluate("typeof window.gradwalk.state.toggle === 'function'")
            row["open"] = page.evaluate(OPEN_JS, 5) if has_toggle else None
            out[side][name] = row
            if os.environ.get("BENCH_VERBOSE"):
                print(f"  {side:<4}{name:<22}", {k: [round(x) for x in v] for k, v in samples[side].items()}, flush=True)
    return out


def fmt(v: float | None, spec: str) -> str:
    return format("—", ">" + spec.split(".")[0]) if v is None else format(v, spec)


def report(docs: list[tuple[str, str]], old: dict, new: dict, rev: str, load: tuple[float, float]) -> bool:  # type: ignore[type-arg]
    print()
    print(f"baseline: {rev}   (old / new, each in the same Chromium; ratio = new / old)")
    print(f"machine: {os.cpu_count()} cores, 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end")
    head = f"{'trace':<22}{'nodes':>7}{'first frame ms':>22}{'ratio':>7}{'play fps':>13}{'step ms':>14}{'pan fps':>12}{'heap MB':>14}{'open ms':>13}"
    print(head)
    ok = True
    for name, text in docs:
        n = len(json.loads(text)["nodes"])
        o, w = old[name], new[name]
        ratio = w["first"] / o["first"] if o["first"] else float("nan")
        print(
            f"{name:<22}{n:>7}{fmt(o['first'], '10.0f')} /{fmt(w['first'], '6.0f')}   {ratio:>6.2f}"
            f"{fmt(o['play'], '6.0f')} /{fmt(w['play'], '4.0f')}{fmt(o['step'], '8.1f')} /{fmt(w['step'], '5.1f')}"
            f"{fmt(o['pan'], '6.0f')} /{fmt(w['pan'], '3.0f')}"
            f"{fmt(o['heap'], '7.1f')} /{fmt(w['heap'], '5.1f')}{fmt(o['open'], '7.0f')} /{fmt(w['open'], '4.0f')}"
        )
    print()
    print("at Fit after loading (old / new): zoom, smallest box text on screen (px), drawing at zoom 1 (px), boxes drawn")
    print(f"{'trace':<22}{'zoom':>14}{'text px':>14}{'drawing w x h':>28}{'boxes':>14}")
    for name, _ in docs:
        o, w = old[name], new[name]
        size = [f"{r['fit_w']:.0f}x{r['fit_h']:.0f}" for r in (o, w)]
        print(
            f"{name:<22}{o['fit_k']:>7.2f} /{w['fit_k']:>5.2f}{fmt(o['fit_px'], '7.1f')} /{fmt(w['fit_px'], '5.1f')}"
            f"{size[0]:>15} /{size[1]:>11}{o['fit_boxes']:>7} /{w['fit_boxes']:>5}"
        )
    checks = []
    for name, text in docs:
        n = len(json.loads(text)["nodes"])
        w, o = new[name], old[name]
        if name.startswith("GPT"):
            checks.append((f"{name}: first frame <= 500 ms", w["first"] <= 500))
        if n >= 15000:
            checks.append((f"{name}: first frame <= 1.5 s", w["first"] <= 1500))
        if 400 <= n <= 6000 and name.startswith("recurrence"):
            checks.append((f"{name}: first frame at least as good as the baseline (within 10%)", w["first"] <= o["first"] * 1.1))
        if w["open"] is not None:
            checks.append((f"{name}: opening a box <= 100 ms", w["open"] <= 100))
        checks.append((f"{name}: play and pan >= 55 fps", w["play"] >= 55 and w["pan"] >= 55))
        checks.append((f"{name}: text at Fit >= 11 px on screen", w["fit_px"] is not None and w["fit_px"] >= 11 - 0.05))
    print()
    for label, met in checks:
        print(f"  {'met   ' if met else 'MISSED'} {label}")
        ok = ok and met
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed loads per trace and page (median reported)")
    parser.add_argument("--baseline", default=None, help="git revision of the page to compare with (default: before issue 12)")
    parser.add_argument("--big-steps", type=int, default=3990, help="iterations of the ~20,000-node recurrence")
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument(
        "--only", action="append", default=[], help="measure only the traces whose name contains this (repeatable)"
    )
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    if not (ROOT / "static" / "dist" / "vendor.js").exists():
        sys.exit("static/dist/vendor.js is missing: run `make frontend` first")
    rev = args.baseline or default_baseline()
    load_start = os.getloadavg()[0]
    print(f"tracing (real tracer, in process; baseline page: {rev})", flush=True)
    docs = traces(args.big_steps, args.only)
    with sync_playwright() as p, baseline_tree(rev) as old_root, serve(old_root) as old_url, serve(ROOT) as new_url:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        pages = {"old": open_page(browser, old_url), "new": open_page(browser, new_url)}
        print(f"measuring the baseline page ({old_url}) and this one ({new_url}), in turn", flush=True)
        results = measure(pages, docs, args.runs)
        for side, page in pages.items():
            if page.errors:
                print(f"  console errors on the {side} page: {page.errors[:3]}")
        browser.close()
    old, new = results["old"], results["new"]
    return 0 if report(docs, old, new, rev, (load_start, os.getloadavg()[0])) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
