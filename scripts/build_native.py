"""Build app/tracer/_native (app/tracer/native.cpp) against the installed torch; `make` runs it.

    .venv/bin/python scripts/build_native.py

One g++ call with torch's own include and library paths and C++ ABI (about 15 s). Needs g++ and
Python's headers (Debian: g++ python3-dev), which `make system` installs where missing.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import torch
from torch.utils.cpp_extension import include_paths, library_paths

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "app" / "tracer" / "native.cpp"
TARGET = ROOT / "app" / "tracer" / f"_native{sysconfig.get_config_var('EXT_SUFFIX')}"


def command() -> list[str]:
    libs = library_paths()
    return [
        "g++",
        "-O2",
        "-shared",
        "-fPIC",
        "-std=c++17",
        "-fvisibility=hidden",
        f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
        *(f"-I{p}" for p in include_paths()),
        f"-I{sysconfig.get_paths()['include']}",
        str(SOURCE),
        "-o",
        str(TARGET),
        *(f"-L{p}" for p in libs),
        *(f"-Wl,-rpath,{p}" for p in libs),
        "-lc10",
        "-ltorch",
        "-ltorch_cpu",
        "-ltorch_python",
    ]


def main() -> None:
    cmd = command()
    print(f"building {TARGET.relative_to(ROOT)}", flush=True)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-8000:])
        sys.exit(f"build failed: {shlex.join(cmd)}")


if __name__ == "__main__":
    main()
