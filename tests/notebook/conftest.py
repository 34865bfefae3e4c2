"""The wheel as a student installs it, built once per session, and a kernel that imports it.

`make dist` builds dist/gradwalk-*.whl; a fresh virtual environment gets it with `pip install
--no-index`. That environment already has torch 2.13.0, as a student's does: this checkout's .venv's
packages (torch, its dependencies and the Jupyter ones) are visible to it through a .pth file, by
symlinks to each of them, all but this checkout's own editable gradwalk. So pip finds every
dependency installed, downloads nothing, and must not install a second torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("autograd_tutorial_*.ipynb"))
KERNEL = "gradwalk-wheel"


@dataclass
class Installed:
    venv: Path
    python: Path
    site: Path  # the fresh environment's own site-packages
    shared: Path  # the .venv packages it sees
    jupyter_path: Path  # holds the kernel spec KERNEL, running `python` (JUPYTER_PATH)
    wheel: Path

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return subprocess.run(args, cwd=cwd or self.venv, env=env, capture_output=True, text=True, check=check, timeout=600)


@pytest.fixture(scope="session")
def wheel() -> Path:
    """dist/gradwalk-*.whl, built by `make dist` (with the front-end bundle)."""
    subprocess.run(["make", "-s", "dist"], cwd=ROOT, check=True, capture_output=True, timeout=900)
    (built,) = sorted((ROOT / "dist").glob("gradwalk-*.whl"))
    return built


def _share_packages(site: Path, shared: Path) -> None:
    ours = sorted(p for p in Path(sys.prefix).glob("lib/python*/site-packages"))[0]
    shared.mkdir()
    for p in ours.iterdir():
        name = p.name.lower()
        if name.startswith(("gradwalk", "__editable__", "_gradwalk")) or name.endswith(".pth") or name == "__pycache__":
            continue
        (shared / p.name).symlink_to(p)
    (site / "zz_torch_already_installed.pth").write_text(str(shared) + "\n")


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """A fresh venv with the wheel installed by pip, and a Jupyter kernel spec that runs it."""
    base = tmp_path_factory.mktemp("student")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    (site,) = venv.glob("lib/python*/site-packages")
    _share_packages(site, base / "shared")
    env = Installed(venv, python, site, base / "shared", base / "jupyter", wheel)
    # pip itself comes from the shared packages; --no-index: nothing may need downloading
    env.run(str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index", str(wheel))
    env.run(str(python), "-m", "ipykernel", "install", "--prefix", str(base / "jupyter-prefix"), "--name", KERNEL)
    (base / "jupyter").symlink_to(base / "jupyter-prefix" / "share" / "jupyter")
    yield env


@pytest.fixture(scope="session")
def executed(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shipped notebooks, executed by nbclient in the wheel's kernel: lang -> executed copy."""
    import nbclient
    import nbformat

    out_dir = tmp_path_factory.mktemp("executed")
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(installed.jupyter_path)
    try:
        done = {}
        for path in NOTEBOOKS:
            nb = nbformat.read(path, as_version=4)
            nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(out_dir)}}).execute()
            lang = path.stem.rsplit("_", 1)[1]
            done[lang] = out_dir / path.name
            nbformat.write(nb, done[lang])
        return done
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
