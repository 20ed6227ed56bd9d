"""Typed errors: one exception class per rwkvrt status.

Every failing C call raises the subclass of ``RwkvrtError`` for its status, carrying the status
(``status``, ``status_name``), the library's message for the failure (``message``, from
``rwkvrt_last_error`` on the calling thread) and the C function that failed (``function``).
Python-side argument errors (a wrong type, a closed object) raise the built-in ``TypeError`` and
``ValueError`` instead.
"""

from __future__ import annotations

from . import _lib


class RwkvrtError(Exception):
    """A call into the rwkvrt library failed.

    Attributes:
        status: the numeric ``rwkvrt_status``.
        status_name: its stable name, e.g. ``"RWKVRT_ERR_FORMAT"``.
        message: the library's description of the failure (may be empty).
        function: the C function that failed, e.g. ``"rwkvrt_model_load"``.
    """

    #: The status this class stands for (None on the base class).
    STATUS: int | None = None

    def __init__(self, status: int, status_name: str, message: str, function: str = ""):
        self.status = status
        self.status_name = status_name
        self.message = message
        self.function = function
        where = f"{function}: " if function else ""
        super().__init__(f"{where}{message or 'failed'} [{status_name}]")


class InvalidArgumentError(RwkvrtError, ValueError):
    """RWKVRT_ERR_INVALID_ARGUMENT: a bad handle, size, id or parameter (also a ``ValueError``)."""
    STATUS = 1


class InputOutputError(RwkvrtError):
    """RWKVRT_ERR_IO: a file could not be opened, read or written."""
    STATUS = 2


class FormatError(RwkvrtError):
    """RWKVRT_ERR_FORMAT: malformed, truncated or hostile file or blob contents."""
    STATUS = 3


class UnsupportedError(RwkvrtError):
    """RWKVRT_ERR_UNSUPPORTED: well-formed input this library version cannot handle (also: the
    model has no tokenizer)."""
    STATUS = 4


class BackendError(RwkvrtError):
    """RWKVRT_ERR_BACKEND: a backend (device) operation failed."""
    STATUS = 5


class NoBackendError(RwkvrtError):
    """RWKVRT_ERR_NO_BACKEND: no usable backend, or the requested one is not available."""
    STATUS = 6


class OutOfMemoryError(RwkvrtError, MemoryError):
    """RWKVRT_ERR_OUT_OF_MEMORY: host or device memory exhausted (also a ``MemoryError``)."""
    STATUS = 7


class StateMismatchError(RwkvrtError):
    """RWKVRT_ERR_STATE_MISMATCH: a state of another model, or of the wrong size."""
    STATUS = 8


class CorruptStateError(RwkvrtError):
    """RWKVRT_ERR_CORRUPT: a checksum did not match (a damaged state blob)."""
    STATUS = 9


class BufferTooSmallError(RwkvrtError):
    """RWKVRT_ERR_BUFFER_TOO_SMALL: a caller-provided buffer was too small."""
    STATUS = 10


class CancelledError(RwkvrtError):
    """RWKVRT_ERR_CANCELLED: cancelled by the caller (e.g. a progress callback asked to stop)."""
    STATUS = 11


class InternalError(RwkvrtError):
    """RWKVRT_ERR_INTERNAL: a bug in rwkvrt; please report it with the message."""
    STATUS = 12


class AbiMismatchError(RwkvrtError):
    """RWKVRT_ERR_ABI_MISMATCH: a plugin or caller built for an ABI this library lacks."""
    STATUS = 13


_BY_STATUS: dict[int, type[RwkvrtError]] = {
    cls.STATUS: cls
    for cls in (InvalidArgumentError, InputOutputError, FormatError, UnsupportedError,
                BackendError, NoBackendError, OutOfMemoryError, StateMismatchError,
                CorruptStateError, BufferTooSmallError, CancelledError, InternalError,
                AbiMismatchError)
}


def error_class(status: int) -> type[RwkvrtError]:
    """The exception class for `status` (``RwkvrtError`` itself for a status this binding does not
    know, e.g. one added by a newer library)."""
    return _BY_STATUS.get(status, RwkvrtError)


def make_error(status: int, function: str = "") -> RwkvrtError:
    """Builds the exception for a failed call; must run right after that call on the same thread
    (the library's message is per thread and valid until its next call)."""
    lib = _lib.lib()
    message = (lib.rwkvrt_last_error() or b"").decode("utf-8", "replace")
    name = (lib.rwkvrt_status_name(status) or b"").decode("ascii", "replace")
    return error_class(status)(status, name, message, function)


def call(function: str, *args) -> None:
    """Calls the C function named `function` (one returning rwkvrt_status) with `args`, and raises
    the typed error if it fails."""
    status = getattr(_lib.lib(), function)(*args)
    if status != 0:
        raise make_error(status, function)
