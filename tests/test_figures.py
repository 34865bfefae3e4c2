"""Teachers' figures in batch (app/figures.py, `gradwalk export a.py b.py --step 5,12,-1 -o figures/`):
the real sandbox, the real bundle, real Chromium."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app import export, figures
from app.config import Settings
from tests.test_export import tools  # noqa: F401 - the same skip-or-fail when Chromium or the bundle is missing

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "app" / "examples"

pytestmark = pytest.mark.slow


def gradwalk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


def svg_size(image: str) -> tuple[float, float, list[float]]:
    tag = re.search(r"<svg [^>]*>", image)[0]  # type: ignore[index]
    width, height = (float(re.search(rf'\b{a}="([\d.]+)"', tag)[1]) for a in ("width", "height"))  # type: ignore[index]
    return width, height, [float(v) for v in re.search(r'viewBox="([^"]+)"', tag)[1].split()]  # type: ignore[index]


def test_many_programs_at_many_steps_in_one_command(tmp_path: Path) -> None:
    out = tmp_path / "figures"
    chain, jacobian = EXAMPLES / "seed_5_chain.py", EXAMPLES / "seed_4_jacobian.py"
    result = gradwalk("export", str(chain), str(jacobian), "--format", "svg", "--step", "5,12,-1", "-o", f"{out}/")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["seed_5_chain-5.svg", "seed_5_chain-12.svg", "seed_5_chain-24.svg"]
        + ["seed_4_jacobian-5.svg", "seed_4_jacobian-12.svg", "seed_4_jacobian-65.svg"]
    )
    assert "6 figures from 2 programs" in result.stderr
    # The same figure as one program exported alone, byte for byte.
    alone = tmp_path / "alone.svg"
    assert gradwalk("export", str(chain), "--step", "12", "-o", str(alone)).returncode == 0
    assert alone.read_bytes() == (out / "seed_5_chain-12.svg").read_bytes()


def test_a_batch_starts_one_sandbox_and_one_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.sandbox import SandboxPool

    started = {"sandbox": 0, "browser": 0}
    pool_start, session = SandboxPool.start, export.browser_session

    async def counted_start(self: Any) -> None:
        started["sandbox"] += 1
        await pool_start(self)

    def counted_session(browser: Any = None) -> Any:
        started["browser"] += 1
        return session(browser)

    monkeypatch.setattr(SandboxPool, "start", counted_start)
    monkeypatch.setattr(export, "browser_session", counted_session)
    programs = [figures.Program(p.stem, p.read_text(), p.parent) for p in sorted(EXAMPLES.glob("seed_[345]_*.py"))]
    written: list[Path] = []
    problems = figures.export_all(
        programs,
        figures.Figures("svg", [0, -1]),
        tmp_path,
        Settings(),
        lambda path, size, trace, note: written.append(path),
        ran=figures.traces([p.source for p in programs], Settings(), sandbox=True),
    )
    assert problems == [] and len(written) == 6 and all(p.exists() for p in written)
    assert started == {"sandbox": 1, "browser": 1}


def test_without_sandbox_the_programs_run_in_one_child_and_give_the_sandboxs_documents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import local_trace
    from app.sandbox import SandboxPool

    children, init = [], local_trace.Tracing.__init__

    def counted(self: Any, sources: list[str]) -> None:
        init(self, sources)
        children.append(self.child.pid)

    async def refused(self: Any) -> None:
        raise AssertionError("no sandbox without --sandbox")

    programs = sorted(EXAMPLES.glob("seed_*.py"))
    sources = [p.read_text() for p in programs]
    sandboxed = [t.model_dump_json() for t in figures.traces(sources, Settings(), sandbox=True)]
    monkeypatch.setattr(local_trace.Tracing, "__init__", counted)
    monkeypatch.setattr(SandboxPool, "start", refused)
    local = [t.model_dump_json() for t in figures.traces(sources, Settings())]
    assert len(children) == 1 and children[0] != __import__("os").getpid()
    # The same document, byte for byte (an error program's too), but for the addresses a program printed.
    assert [re.sub(r"0x[0-9a-f]+", "0x…", t) for t in local] == [re.sub(r"0x[0-9a-f]+", "0x…", t) for t in sandboxed]


def test_a_program_that_kills_the_tracing_process_is_said(tmp_path: Path) -> None:
    program = tmp_path / "gone.py"
    program.write_text("import os\nos._exit(3)\n")
    result = gradwalk("export", str(program), "-o", str(tmp_path / "gone.svg"))
    assert result.returncode == 2
    assert "the tracing process stopped (exit status 3)" in result.stderr
    assert not (tmp_path / "gone.svg").exists()


def test_a_step_out_of_range_is_said_and_the_others_are_written(tmp_path: Path) -> None:
    result = gradwalk("export", str(EXAMPLES / "seed_3_scalar_backward.py"), "--step", "1,999", "-o", str(tmp_path))
    assert result.returncode == 1
    assert "step 999 is out of range" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["seed_3_scalar_backward-1.svg"]


def test_two_programs_of_the_same_name_are_refused_before_anything_runs(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.py").write_text("import torch\n")
    out = tmp_path / "figures"
    result = gradwalk("export", str(tmp_path / "a" / "x.py"), str(tmp_path / "b" / "x.py"), "-o", f"{out}/")
    assert result.returncode == 2
    assert "several programs are called x" in result.stderr
    assert not out.exists()


def test_size_fits_the_graph_to_a_slide(tmp_path: Path) -> None:
    svg, png = tmp_path / "chain.svg", tmp_path / "chain.png"
    for out in (svg, png):
        result = gradwalk(
            "export", str(EXAMPLES / "seed_5_chain.py"), "--size", "1920x1080", "--format", out.suffix[1:], "-o", str(out)
        )
        assert result.returncode == 0, result.stderr
    width, height, box = svg_size(svg.read_text())
    assert (width, height) == (1920, 1080)
    assert box[2] / box[3] == pytest.approx(1920 / 1080, rel=1e-4)  # the graph centred, nothing stretched (2 decimals)
    assert struct.unpack(">II", png.read_bytes()[16:24]) == (1920, 1080)


def test_fit_keeps_the_whole_drawing_centred() -> None:
    image = '<?xml version="1.0"?>\n<svg xmlns="x" width="100" height="400" viewBox="-12 -12 100 400" role="img"><rect x="-12" y="-12" width="100" height="400" fill="#fff"/></svg>'
    fitted = export.fit(image, (1600, 900))
    width, height, (x, y, w, h) = svg_size(fitted)
    assert (width, height) == (1600, 900) and (y, h) == (-12, 400)
    assert w == pytest.approx(400 * 16 / 9, abs=0.01) and x + w / 2 == pytest.approx(-12 + 50, abs=0.01)
    rect = re.search(r'<rect x="([^"]+)" y="([^"]+)" width="([^"]+)" height="([^"]+)"', fitted)
    assert [float(v) for v in rect.groups()] == [x, y, w, h]  # type: ignore[union-attr]  # the background covers it all


def test_direction_auto_takes_the_shape_closest_to_the_figures() -> None:
    import math

    from app.tracer import trace_of

    chosen: dict[str, list[str]] = {}
    with export.browser_session() as chromium:
        for name in ("seed_3_scalar_backward", "mlp_step"):
            trace = trace_of((EXAMPLES / f"{name}.py").read_text())
            for aspect in (16 / 9, 4.0, 0.5):  # a slide, a banner, a portrait page
                shapes = {}
                for direction in ("TB", "LR", "auto"):
                    with export.Drawing(chromium, trace, direction=direction, aspect=aspect) as drawing:
                        width, height, _ = svg_size(drawing.svg(-1))
                        shapes[direction] = width / height  # the figure's own shape, its margin included
                closest = min(("TB", "LR"), key=lambda d: abs(math.log(shapes[d] / aspect)))
                assert shapes["auto"] == shapes[closest], (name, aspect, shapes)
                chosen.setdefault(name, []).append(closest)
    assert chosen["seed_3_scalar_backward"][1:] == ["LR", "TB"]  # the figure's shape decides: a banner's is not a page's
