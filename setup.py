"""The wheel's layout (metadata is in pyproject.toml). The repository keeps app/, static/ and
templates/ at the top; the wheel installs them as one package, gradwalk: gradwalk/ (app/),
gradwalk/static/ (with the front end bundled by `make frontend`) and gradwalk/templates/.

Mapped here with setuptools' package_dir rather than by copying files in a build hook: the mapping
is data, an editable install (`make setup`) gets the same names, and every subpackage of app/ is
found by itself (a list in pyproject.toml would miss the next one silently).
"""

from setuptools import find_namespace_packages, setup

LAYOUT = {"gradwalk": "app", "gradwalk.static": "static", "gradwalk.templates": "templates"}


def packages(name: str, where: str) -> list[str]:
    return [name, *(f"{name}.{p}" for p in find_namespace_packages(where, exclude=["*__pycache__*"]))]


setup(package_dir=LAYOUT, packages=[p for name, where in LAYOUT.items() for p in packages(name, where)])
