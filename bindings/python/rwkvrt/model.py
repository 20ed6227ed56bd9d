"""Models: a checkpoint loaded onto a backend, shared by any number of sessions."""

from __future__ import annotations

import ctypes
import os
from typing import TYPE_CHECKING, Callable, Optional

from . import _lib
from ._resource import Owned, decode_c_string
from .errors import call
from .tokenizer import Tokenizer
from .types import ModelInfo, StateTensorInfo, WeightType

if TYPE_CHECKING:
    from .batch import Batch, PrefixCache
    from .session import Session

#: Called while a model loads with (fraction in [0, 1], stage name); return True to cancel.
ProgressCallback = Callable[[float, str], Optional[bool]]


def _weight_type(weights) -> WeightType:
    if weights is None:
        return WeightType.AUTO
    if isinstance(weights, str):
        try:
            return WeightType[weights.upper()]
        except KeyError:
            raise ValueError(f"weights {weights!r} is not one of auto, f32, bf16, f16") from None
    return WeightType(weights)


_MATMUL_PRECISIONS = {"exact": 0, "fast": 1}


def _matmul_precision(matmul: str) -> int:
    try:
        return _MATMUL_PRECISIONS[matmul]
    except KeyError:
        raise ValueError(f"matmul {matmul!r} is not one of exact, fast") from None


class Model(Owned):
    """A loaded checkpoint (.pth, .safetensors or rwkv.cpp .bin), immutable and thread-safe.

    Args:
        path: the checkpoint file.
        backend: backend name ("cpu", "cuda", ...); None or "auto" picks the best usable one.
        threads: CPU worker threads; 0 = all online cores.
        weights: precision to prepare the matrices in: None/"auto" (keep the checkpoint's),
            "f32", "bf16", "f16", or a WeightType.
        tokenizer: path of the model's tokenizer file (World .txt or tokenizer.json); None finds
            it (a byte-level model needs none; see rwkvrt_model_get_tokenizer).
        progress: optional ``progress(fraction, stage)``, called on the loading thread; return
            True to cancel the load (which then raises CancelledError).  If it raises, the load is
            cancelled and its exception propagates.
        device: device index within the backend.
        group_norm_eps: v5-v7 GroupNorm eps; 0 = the file format's default.
        matmul: "exact" (fp32 activations everywhere) or "fast" (GPUs may round the
            activations of large matmuls to the f16/bf16 weight type; see RWKVRT_MATMUL_FAST).

    Raises the typed error of the failure (InputOutputError, FormatError, UnsupportedError,
    NoBackendError, OutOfMemoryError, CancelledError, ...).

    Ownership: ``close()`` (or leaving a ``with`` block) releases the model; the C model is freed
    once every session, tokenizer, prefix cache and batch made from it is closed too.
    """

    _what = "model"

    def __init__(self, path: str | os.PathLike, backend: str | None = None, threads: int = 0,
                 weights: WeightType | str | None = None,
                 tokenizer: str | os.PathLike | None = None,
                 progress: ProgressCallback | None = None, *, device: int = 0,
                 group_norm_eps: float = 0.0, matmul: str = "exact"):
        lib = _lib.lib()
        params = lib.rwkvrt_model_params_default()
        params.backend = backend.encode() if backend else None
        params.device = device
        params.n_threads = threads
        params.weights = int(_weight_type(weights))
        params.group_norm_eps = group_norm_eps
        params.matmul_precision = _matmul_precision(matmul)
        params.tokenizer_path = os.fsencode(tokenizer) if tokenizer is not None else None

        raised: list[BaseException] = []
        if progress is not None:
            def on_progress(_user_data, fraction, stage):
                if raised:
                    return 1
                try:
                    return 1 if progress(float(fraction), decode_c_string(stage)) else 0
                except BaseException as e:  # re-raised after the load returns
                    raised.append(e)
                    return 1
            c_progress = _lib.progress_fn(on_progress)
            params.progress = c_progress

        ptr = _lib.model_p()
        try:
            call("rwkvrt_model_load", os.fsencode(path), ctypes.byref(params), ctypes.byref(ptr))
        except Exception:
            if raised:
                raise raised[0] from None
            raise
        super().__init__(ptr, "rwkvrt_model_free")
        self._path = os.fspath(path)

        info = _lib.rwkvrt_model_info()
        info.struct_size = ctypes.sizeof(info)
        call("rwkvrt_model_get_info", ptr, ctypes.byref(info))
        self._info = ModelInfo._from_c(info)

    @property
    def path(self) -> str:
        """The checkpoint file the model was loaded from."""
        return self._path

    @property
    def info(self) -> ModelInfo:
        """What the model is (dimensions, version, backend...)."""
        return self._info

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer (a new wrapper per access; it keeps the model alive).

        Raises UnsupportedError if none was found (the message names the files tried; pass
        ``tokenizer=`` to the constructor)."""
        ptr = _lib.tokenizer_p()
        call("rwkvrt_model_get_tokenizer", self._handle(), ctypes.byref(ptr))
        return Tokenizer(ptr, owned=False, model=self)

    @property
    def state_tensors(self) -> list[StateTensorInfo]:
        """The layout of the canonical state (Session.export_state), tensor by tensor."""
        handle = self._handle()
        count = ctypes.c_size_t(0)
        call("rwkvrt_model_state_tensor_count", handle, ctypes.byref(count))
        tensors = []
        for i in range(count.value):
            t = _lib.rwkvrt_state_tensor_info()
            t.struct_size = ctypes.sizeof(t)
            call("rwkvrt_model_state_tensor_info", handle, i, ctypes.byref(t))
            tensors.append(StateTensorInfo(decode_c_string(t.name), t.offset,
                                           tuple(t.shape[d] for d in range(t.n_dims))))
        return tensors

    def session(self) -> "Session":
        """A new session at the model's initial state (see Session)."""
        from .session import Session
        return Session(self)

    def prefix_cache(self, max_bytes: int) -> "PrefixCache":
        """A new prefix cache for this model's sessions (see PrefixCache)."""
        from .batch import PrefixCache
        return PrefixCache(self, max_bytes)

    def batch(self, max_batch: int) -> "Batch":
        """A new batch decoder for up to `max_batch` sessions of this model (see Batch)."""
        from .batch import Batch
        return Batch(self, max_batch)

    def __repr__(self) -> str:
        i = self._info
        return (f"<rwkvrt.Model RWKV-{i.version_name} L{i.n_layer} C{i.n_embd} vocab {i.n_vocab}"
                f" on {i.backend}{' (closed)' if self.closed else ''}>")
