"""What the binding's tests share: where the model and the test data are, and one loaded model.

Environment (CTest sets them; see bindings/python/CMakeLists.txt):
  RWKVRT_LIBRARY       the shared library under test (else the binding's own search applies)
  RWKVRT_BACKEND_PATH  where the backend plugins are
  RWKVRT_TEST_MODEL    the model to run (default: the repository's default model)
  RWKVRT_TESTDATA      the shared test data directory, else RWKVRT_TESTDATA_DEFAULT (CMake's
                       RWKVRT_TESTDATA_DIR); tests needing it are skipped without either
  RWKVRT_ABI_PROBE     the compiled abi_layout_probe (the layout test is skipped without it)
"""

from __future__ import annotations

import os
import sys
import unittest
from pathlib import Path

BINDING_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BINDING_DIR.parent.parent

# Import the package from this source tree, not from anything installed.
if str(BINDING_DIR) not in sys.path:
    sys.path.insert(0, str(BINDING_DIR))

import rwkvrt  # noqa: E402

MODEL_PATH = Path(os.environ.get("RWKVRT_TEST_MODEL",
                                 REPO_DIR / "models" / "default" / "rwkv7-kjv-byte.pth"))
_testdata = os.environ.get("RWKVRT_TESTDATA") or os.environ.get("RWKVRT_TESTDATA_DEFAULT")
TESTDATA = Path(_testdata) if _testdata else None

# Threads per model: the test machines are shared, so keep it small.
THREADS = int(os.environ.get("RWKVRT_TEST_THREADS", "2"))

_model: rwkvrt.Model | None = None


def shared_model() -> rwkvrt.Model:
    """One model for every test of a process (loading is the slow part)."""
    global _model
    if _model is None:
        _model = rwkvrt.Model(MODEL_PATH, threads=THREADS)
    return _model


def testdata(*parts: str) -> Path:
    """A path inside the shared test data; skips the calling test if it is not available."""
    if TESTDATA is None:
        raise unittest.SkipTest("RWKVRT_TESTDATA is not set")
    path = TESTDATA.joinpath(*parts)
    if not path.exists():
        raise unittest.SkipTest(f"{path} is missing")
    return path


GREEDY = rwkvrt.SamplingParams.greedy()
PROMPT = "And God said, Let there be light"
