"""Installed, drainer is one namespace: a user's own ``app`` or ``db`` package is untouched.

The wheel is built from this checkout and installed into a directory of its own; a
scratch project with its own ``app`` and ``db`` packages then imports both.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("drainer-*.whl")
    return built


def test_the_wheel_holds_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"drainer"}
    assert "drainer/py.typed" in names
    assert "drainer/db/dialects/hyperswitch/__init__.py" in names


def test_a_project_with_its_own_app_package_imports_drainer(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    project = tmp_path / "project"
    for package in ("app", "db"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text(f'WHOSE = "the user\'s {package}"\n')
    script = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys
        # the installed package first: a top-level app or db in it would win
        sys.path[:0] = [{str(site)!r}, {str(project)!r}]
        import app, db
        import drainer
        from drainer import Producer, Store, load_settings, start_drainer, open_drainer
        assert app.WHOSE == "the user's app", app.__file__
        assert db.WHOSE == "the user's db", db.__file__
        assert drainer.__file__.startswith({str(site)!r}), drainer.__file__
        # every module of the installed package imports (none left out of the wheel)
        names = [m.name for m in pkgutil.walk_packages(drainer.__path__, "drainer.")]
        for name in names:
            module = importlib.import_module(name)
            assert module.__file__.startswith({str(site)!r}), module.__file__
        print(len(names))
        """
    )
    # run from the scratch project, as its own code would be
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=project, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 50
