"""Library-wide functions: versions, backends, logging."""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Callable

from . import _lib
from ._resource import decode_c_string
from .errors import call
from .types import BackendInfo, DeviceInfo, LogLevel


def library_version() -> str:
    """The loaded library's release version, "MAJOR.MINOR.PATCH"."""
    return decode_c_string(_lib.lib().rwkvrt_version_string())


def abi_version() -> int:
    """The ABI version the loaded library implements (>= the one this binding needs)."""
    return int(_lib.lib().rwkvrt_abi_version())


def library_path() -> str:
    """The shared library file in use (found as described in the package README)."""
    return _lib.library_path()


def backends() -> list[BackendInfo]:
    """Every backend plugin found (usable or not), in registry order.  Plugins are discovered on
    the first call, in RWKVRT_BACKEND_PATH, the install's plugin directory and beside the
    library."""
    count = ctypes.c_size_t(0)
    call("rwkvrt_backend_count", ctypes.byref(count))
    found = []
    for i in range(count.value):
        info = _lib.rwkvrt_backend_info()
        info.struct_size = ctypes.sizeof(info)
        call("rwkvrt_backend_get_info", i, ctypes.byref(info))
        found.append(BackendInfo._from_c(i, info))
    return found


def backend_devices(backend: BackendInfo | int) -> list[DeviceInfo]:
    """The devices of a usable backend (an index or a BackendInfo).  Raises NoBackendError for an
    unusable one."""
    index = backend.index if isinstance(backend, BackendInfo) else int(backend)
    info = _lib.rwkvrt_backend_info()
    info.struct_size = ctypes.sizeof(info)
    call("rwkvrt_backend_get_info", index, ctypes.byref(info))
    devices = []
    for d in range(max(info.device_count, 0)):
        dev = _lib.rwkvrt_device_info()
        dev.struct_size = ctypes.sizeof(dev)
        call("rwkvrt_backend_get_device", index, d, ctypes.byref(dev))
        devices.append(DeviceInfo._from_c(dev))
    return devices


def load_backend(path: str | os.PathLike) -> int:
    """Loads a backend plugin from an explicit file and returns its registry index (the existing
    one if it was loaded before).  Raises InputOutputError, AbiMismatchError or FormatError."""
    index = ctypes.c_size_t(0)
    call("rwkvrt_backend_load", os.fsencode(path), ctypes.byref(index))
    return index.value


#: Receives (level, message) for each library log line.
LogCallback = Callable[[LogLevel, str], None]

_log_lock = threading.Lock()
# Every ctypes callback ever handed to the library stays alive: another thread may still be inside
# a replaced one when set_log_callback returns.
_log_trampolines: list = []


def set_log_callback(callback: LogCallback | None, level: LogLevel = LogLevel.WARN) -> None:
    """Routes library log lines of `level` or more severe to ``callback(level, message)``, which
    may be called from any thread the library runs on and must not call back into rwkvrt.
    Exceptions it raises are ignored.  None restores the default (WARN and ERROR to stderr)."""
    with _log_lock:
        if callback is None:
            _lib.lib().rwkvrt_set_log_callback(_lib.log_fn(), None, int(LogLevel.WARN))
            return

        def trampoline(_user_data, c_level, message):
            try:
                try:
                    lvl = LogLevel(c_level)
                except ValueError:
                    lvl = c_level
                callback(lvl, decode_c_string(message))
            except Exception:
                pass

        new = _lib.log_fn(trampoline)
        _log_trampolines.append(new)
        _lib.lib().rwkvrt_set_log_callback(new, None, int(level))
