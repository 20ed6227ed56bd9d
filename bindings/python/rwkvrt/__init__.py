"""rwkvrt: run RWKV language models from Python, through the rwkvrt C library (ctypes; no
compiled extension).

Quick start::

    import rwkvrt
    with rwkvrt.Model("rwkv7-kjv-byte.pth") as model, model.session() as session:
        for text in session.generate("In the beginning", max_tokens=64):
            print(text, end="", flush=True)

The shared library is found through RWKVRT_LIBRARY, a copy next to this package, the build tree
of a source checkout, or the system's library path (see README.md).
"""

from ._lib import ABI_VERSION, LibraryNotFoundError
from .batch import Batch, PrefixCache
from .errors import (
    AbiMismatchError,
    BackendError,
    BufferTooSmallError,
    CancelledError,
    CorruptStateError,
    FormatError,
    InputOutputError,
    InternalError,
    InvalidArgumentError,
    NoBackendError,
    OutOfMemoryError,
    RwkvrtError,
    StateMismatchError,
    UnsupportedError,
    error_class,
)
from .model import Model
from .runtime import (
    abi_version,
    backend_devices,
    backends,
    library_path,
    library_version,
    load_backend,
    set_log_callback,
)
from .session import Generation, Session
from .tokenizer import Tokenizer
from .types import (
    BackendInfo,
    DeviceInfo,
    DType,
    FinishReason,
    LogitsMode,
    LogLevel,
    ModelInfo,
    Piece,
    SamplingMode,
    SamplingParams,
    StateTensorInfo,
    TokenizerInfo,
    WeightType,
)

__version__ = "0.1.0"

__all__ = [
    "ABI_VERSION", "LibraryNotFoundError",
    "Model", "Session", "Generation", "Tokenizer", "PrefixCache", "Batch",
    "SamplingParams", "Piece", "ModelInfo", "TokenizerInfo", "StateTensorInfo", "BackendInfo",
    "DeviceInfo", "WeightType", "DType", "LogitsMode", "SamplingMode", "FinishReason", "LogLevel",
    "backends", "backend_devices", "load_backend", "set_log_callback", "library_version",
    "abi_version", "library_path",
    "RwkvrtError", "InvalidArgumentError", "InputOutputError", "FormatError", "UnsupportedError",
    "BackendError", "NoBackendError", "OutOfMemoryError", "StateMismatchError",
    "CorruptStateError", "BufferTooSmallError", "CancelledError", "InternalError",
    "AbiMismatchError", "error_class",
]
