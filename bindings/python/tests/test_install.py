"""`pip install` of the package into a fresh virtual environment, offline, then importing it.

Needs pip, setuptools >= 61 and (for setuptools < 70.1) wheel in the interpreter running the
tests; skipped with the reason otherwise.  The venv sees the system site-packages (for the build
backend) and pip runs without build isolation and without an index, so nothing is downloaded.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import support


def missing_prerequisite() -> str | None:
    # Looked up without importing: importing pip and setuptools here would clash over distutils.
    if importlib.util.find_spec("pip") is None:
        return "pip is not installed"
    try:
        setuptools_version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return "setuptools is not installed"
    version = tuple(int(p) for p in setuptools_version.split(".")[:2] if p.isdigit())
    if version < (61,):
        return f"setuptools {setuptools_version} is older than 61"
    if version < (70, 1) and importlib.util.find_spec("wheel") is None:
        return f"setuptools {setuptools_version} needs the wheel package to build"
    return None


def run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    if done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


class PipInstallTest(unittest.TestCase):
    def setUp(self):
        reason = missing_prerequisite()
        if reason:
            self.skipTest(f"PIP_INSTALL_PREREQUISITE_MISSING: {reason} in {sys.executable}")
        self.tmp = Path(tempfile.mkdtemp(prefix="rwkvrt-pip-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        # Install from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
        self.src = self.tmp / "src"
        shutil.copytree(support.BINDING_DIR, self.src,
                        ignore=shutil.ignore_patterns("tests", "build", "*.egg-info",
                                                      "__pycache__", "librwkvrt*"))
        self.venv = self.tmp / "venv"
        # --without-pip: the system site-packages already provide pip (and the build backend).
        run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
             str(self.venv)])
        self.python = str(self.venv / ("Scripts" if os.name == "nt" else "bin") / "python")

    def install(self):
        run([self.python, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
             "--no-index", "--no-cache-dir", "--disable-pip-version-check", str(self.src)],
            cwd=self.tmp)

    def check_import(self, env) -> list[str]:
        # From a neutral directory, so nothing but the installed copy can be imported.
        code = ("import rwkvrt; print(rwkvrt.__file__); print(rwkvrt.library_path()); "
                "print(rwkvrt.library_version()); "
                "print(','.join(b.name for b in rwkvrt.backends()))")
        return run([self.python, "-c", code], cwd=self.tmp, env=env).splitlines()

    def test_install_then_import(self):
        self.install()
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        module, library, version, backends = self.check_import(env)
        self.assertTrue(Path(module).resolve().is_relative_to(self.venv.resolve()), module)
        self.assertEqual(version, __import__("rwkvrt").library_version())
        self.assertIn("cpu", backends.split(","))
        if os.environ.get("RWKVRT_LIBRARY"):
            self.assertEqual(library, os.environ["RWKVRT_LIBRARY"])

    def test_library_bundled_next_to_the_package_is_found(self):
        library = os.environ.get("RWKVRT_LIBRARY")
        if not library:
            self.skipTest("RWKVRT_LIBRARY is not set")
        shutil.copy(os.path.realpath(library), self.src / "rwkvrt" / "librwkvrt.so")
        self.install()
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.pop("RWKVRT_LIBRARY")
        _, found, _, backends = self.check_import(env)
        self.assertTrue(Path(found).resolve().is_relative_to(self.venv.resolve()), found)
        self.assertIn("cpu", backends.split(","))  # plugins from RWKVRT_BACKEND_PATH


if __name__ == "__main__":
    unittest.main()
