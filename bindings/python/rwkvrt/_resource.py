"""Ownership of C handles, and conversions between Python sequences and C buffers (internal).

Every public object that owns a C handle derives from ``Owned``.  ``close()`` frees the handle
deterministically; an object other objects depend on (a model its sessions, a prefix cache the
sessions attached to it) is freed only when it is closed *and* its last dependent is freed, so
the C rule "free the sessions before their model" always holds, whatever the order of the Python
calls or of garbage collection.
"""

from __future__ import annotations

import ctypes
import threading
from array import array
from typing import Any, Iterable

from . import _lib

# Guards the dependency counts and the freeing of every Owned object.
_lock = threading.RLock()

# An array typecode of exactly 32 bits for token ids.
_I32 = "i" if array("i").itemsize == 4 else "l"


class Owned:
    """Base of objects owning one C handle, freed by the C function named `free_name`."""

    _what = "object"  # used in "... is closed" messages
    # Class-level defaults keep close() and __del__ safe on an object whose __init__ failed
    # before Owned.__init__ ran.
    _ptr: Any = None
    _closed = False
    _dependents = 0
    _parents: "list[Owned]" = ()  # type: ignore[assignment]

    def __init__(self, ptr: Any, free_name: str | None, parents: Iterable["Owned"] = ()):
        self._ptr = ptr
        self._free_name = free_name
        self._closed = False
        self._dependents = 0
        self._parents: list[Owned] = []
        for parent in parents:
            self._depend_on(parent)

    # -- lifetime ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    def close(self) -> None:
        """Frees the C object now, or as soon as the last object that depends on it is freed.
        Using this object afterwards raises ValueError.  Idempotent."""
        with _lock:
            if self._closed:
                return
            self._closed = True
            self._release_if_unused()

    def __enter__(self):
        self._handle()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: modules may already be gone
            pass

    def _handle(self) -> Any:
        """The C handle; raises ValueError once closed."""
        if self._closed or self._ptr is None:
            raise ValueError(f"this {self._what} is closed")
        return self._ptr

    def _free(self, ptr: Any) -> None:
        if self._free_name:
            getattr(_lib.lib(), self._free_name)(ptr)

    # -- dependencies -----------------------------------------------------------------------------

    def _depend_on(self, parent: "Owned") -> None:
        """`parent` stays allocated at least until this object is freed or stops depending."""
        with _lock:
            parent._handle()
            parent._dependents += 1
            self._parents.append(parent)

    def _stop_depending_on(self, parent: "Owned") -> None:
        with _lock:
            self._parents.remove(parent)
            parent._dependents -= 1
            parent._release_if_unused()

    def _release_if_unused(self) -> None:
        # Caller holds _lock.
        if not self._closed or self._dependents or self._ptr is None:
            return
        ptr, self._ptr = self._ptr, None
        self._free(ptr)
        parents, self._parents = self._parents, []
        for parent in parents:
            parent._dependents -= 1
            parent._release_if_unused()


# ---- buffers ------------------------------------------------------------------------------------

def int32_buffer(values: Iterable[int]) -> tuple[Any, int]:
    """Token ids as a C int32 array (a copy) and their count.  Accepts any iterable of integers,
    including array('i') and numpy integer arrays."""
    if isinstance(values, (str, bytes, bytearray)):
        raise TypeError("token ids must be a sequence of integers, not text")
    ids = array(_I32, values)
    n = len(ids)
    if n == 0:
        return None, 0
    return (ctypes.c_int32 * n).from_buffer(ids), n


def float_output(n: int, out: Any = None) -> tuple[Any, Any]:
    """A writable buffer of at least `n` float32 values: `out` if given (any writable, contiguous
    float32 buffer: array('f'), a numpy float32 array, ...), else a new array('f').  Returns the
    Python object to hand back and the ctypes view to pass to C."""
    if out is None:
        out = array("f", bytes(4 * n))
    view = memoryview(out)
    if view.readonly or not view.c_contiguous or view.format not in ("f", "<f", "=f"):
        raise TypeError("out must be a writable, contiguous float32 buffer")
    if view.nbytes < 4 * n:
        raise ValueError(f"out holds {view.nbytes // 4} floats, {n} are needed")
    if n == 0:
        return out, None
    return out, (ctypes.c_float * (view.nbytes // 4)).from_buffer(out)


def float_input(values: Any) -> tuple[Any, int]:
    """Float32 values for C (a copy unless `values` already is a contiguous float32 buffer)."""
    try:
        view = memoryview(values)
        if view.c_contiguous and view.format in ("f", "<f", "=f"):
            n = view.nbytes // 4
            if n == 0:
                return None, 0
            data = values if not view.readonly else array("f", view.cast("B").tobytes())
            return (ctypes.c_float * n).from_buffer(data), n
    except TypeError:
        pass
    data = array("f", values)
    if not data:
        return None, 0
    return (ctypes.c_float * len(data)).from_buffer(data), len(data)


def decode_c_string(value: bytes | None) -> str:
    """A library-owned C string as str ("" for NULL)."""
    return value.decode("utf-8", "replace") if value else ""
