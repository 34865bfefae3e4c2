"""Where the package's files are, in both layouts: the repository (app/ beside static/ and templates/)
and the installed wheel (gradwalk/ holding static/ and templates/, as setup.py maps them)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# The directory that holds the package: the repository's root, or site-packages. The sandbox's
# zygote puts it first on sys.path to import the package by name.
IMPORT_ROOT = PACKAGE_DIR.parent
EXAMPLES_DIR = PACKAGE_DIR / "examples"


def _beside(name: str) -> Path:
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else IMPORT_ROOT / name


STATIC_DIR = _beside("static")
TEMPLATES_DIR = _beside("templates")
