"""The wheel in a fresh environment that already has torch: what `pip install gradwalk` gives a student."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from app.paths import EXAMPLES_DIR, PACKAGE_DIR
from tests.notebook.conftest import Installed


def test_the_wheel_holds_one_package_with_its_front_end(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"gradwalk", wheel.name.split("-py3")[0] + ".dist-info"}
    for needed in (
        "gradwalk/static/dist/standalone.js",
        "gradwalk/static/dist/fonts.css",
        "gradwalk/static/js/main.js",
        "gradwalk/templates/index.html",
        "gradwalk/examples/catalog.json",
        "gradwalk/migrations/versions/0001_shares.py",
    ):
        assert needed in names, needed
    # every module of the package, and nothing built against one torch
    ours = {f"gradwalk/{p.relative_to(PACKAGE_DIR)}" for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts}
    assert ours <= set(names), sorted(ours - set(names))
    assert not [n for n in names if n.endswith(".so") or "__pycache__" in n]
    assert wheel.name.endswith("-py3-none-any.whl")


def test_import_gradwalk_works_and_import_app_does_not(installed: Installed) -> None:
    probe = (
        "import importlib.util, json, gradwalk, gradwalk.paths as p;"
        "print(json.dumps([gradwalk.__file__, str(p.STATIC_DIR), str(p.TEMPLATES_DIR), importlib.util.find_spec('app') is None,"
        " importlib.util.find_spec('static') is None, importlib.util.find_spec('templates') is None]))"
    )
    where, static, templates, no_app, no_static, no_templates = json.loads(
        installed.run(str(installed.python), "-c", probe).stdout
    )
    assert Path(where).is_relative_to(installed.site)
    assert Path(static) == installed.site / "gradwalk" / "static" and (Path(static) / "dist" / "standalone.js").is_file()
    assert Path(templates) == installed.site / "gradwalk" / "templates"
    assert no_app and no_static and no_templates


def test_no_second_torch_was_installed(installed: Installed) -> None:
    probe = (
        "import importlib.metadata as m, json;"
        "print(json.dumps([str(d.locate_file('')) for d in m.distributions() if d.metadata['Name'] == 'torch']))"
    )
    (location,) = json.loads(installed.run(str(installed.python), "-c", probe).stdout)
    assert Path(location) == installed.shared, "torch is the one that was there"
    assert not list(installed.site.glob("torch*")), "pip put a torch into the fresh environment"
    assert installed.run(str(installed.python), "-c", "import torch; print(torch.__version__)").stdout.startswith("2.13.0")


def test_the_gradwalk_command_runs(installed: Installed) -> None:
    gradwalk = str(installed.venv / "bin" / "gradwalk")
    assert "trace" in installed.run(gradwalk, "--help").stdout
    out = installed.run(gradwalk, "trace", str(EXAMPLES_DIR / "seed_5_chain.py")).stdout
    doc = json.loads(out)
    grads = {n["label"]: n["grad"] for n in doc["nodes"]}
    assert doc["status"] == "ok" and grads["w1"] == 3.0 and grads["w2"] == 6.0


def test_the_installed_command_exports_a_player(installed: Installed) -> None:
    """`gradwalk export` traces in a child Python that imports the package by its installed name (it once
    imported `app`, which only the repository has: every export from the wheel stopped there)."""
    gradwalk = str(installed.venv / "bin" / "gradwalk")
    out = installed.venv / "chain.html"
    done = installed.run(gradwalk, "export", str(EXAMPLES_DIR / "seed_5_chain.py"), "--format", "html", "-o", str(out))
    assert "1 figure" in done.stdout + done.stderr, done.stdout + done.stderr
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and '"status":"ok"' in html.replace(" ", "")


def test_the_installed_package_traces_in_a_namespace(installed: Installed) -> None:
    script = (
        "import gradwalk, json\n"
        "ns = {}\n"
        "d = gradwalk.trace('import torch\\nw = torch.tensor(3.0, requires_grad=True)\\n(w ** 2).backward()', ns)\n"
        "print(json.dumps([d['status'], ns['w'].grad.item()]))\n"
    )
    assert json.loads(installed.run(str(installed.python), "-c", script).stdout) == ["ok", 6.0]
