"""Tokenizers: text <-> token ids (World vocabulary, Hugging Face byte-level BPE, bytes)."""

from __future__ import annotations

import ctypes
import os
from typing import Iterable

from . import _lib
from ._resource import Owned, decode_c_string, int32_buffer
from .errors import BufferTooSmallError, call, make_error
from .types import TokenizerInfo


class Tokenizer(Owned):
    """An immutable tokenizer; every method is thread-safe.

    Get one with ``Tokenizer.load(path)``, ``Tokenizer.byte()`` or ``Model.tokenizer``.  A
    tokenizer from a model belongs to the model: it keeps the model alive, and ``close()`` on it
    only drops that reference.  Others own their C tokenizer and free it on ``close()`` (or when
    garbage-collected)."""

    _what = "tokenizer"

    def __init__(self, ptr, owned: bool, model: Owned | None = None):
        """Internal: use load(), byte() or Model.tokenizer."""
        super().__init__(ptr, "rwkvrt_tokenizer_free" if owned else None,
                         [model] if model is not None else [])
        info = _lib.rwkvrt_tokenizer_info()
        info.struct_size = ctypes.sizeof(info)
        call("rwkvrt_tokenizer_get_info", ptr, ctypes.byref(info))
        self._info = TokenizerInfo(decode_c_string(info.kind), info.vocab_size, info.eos_id)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        """Loads a World vocabulary (.txt) or a Hugging Face tokenizer.json, detecting the kind
        from the contents.  Raises InputOutputError, FormatError or UnsupportedError."""
        ptr = _lib.tokenizer_p()
        call("rwkvrt_tokenizer_load", os.fsencode(path), ctypes.byref(ptr))
        return cls(ptr, owned=True)

    @classmethod
    def byte(cls) -> "Tokenizer":
        """The byte-level tokenizer (256 ids, id = byte value)."""
        ptr = _lib.tokenizer_p()
        call("rwkvrt_tokenizer_create_byte", ctypes.byref(ptr))
        return cls(ptr, owned=True)

    @property
    def info(self) -> TokenizerInfo:
        return self._info

    @property
    def kind(self) -> str:
        """"world", "bpe" or "byte"."""
        return self._info.kind

    @property
    def vocab_size(self) -> int:
        return self._info.vocab_size

    @property
    def eos_id(self) -> int:
        """The end-of-text id, -1 if none."""
        return self._info.eos_id

    def encode(self, text: str | bytes) -> list[int]:
        """Token ids of `text` (str is encoded as UTF-8; bytes are taken as they are, which the
        BPE kind requires to be valid UTF-8)."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        handle = self._handle()
        count = ctypes.c_size_t(0)
        capacity = len(data)  # every kind emits at most one id per byte; retried if not
        while True:
            ids = (ctypes.c_int32 * max(capacity, 1))()
            status = _lib.lib().rwkvrt_tokenizer_encode(handle, data, len(data), ids, capacity,
                                                        ctypes.byref(count))
            if status == BufferTooSmallError.STATUS and count.value > capacity:
                capacity = count.value
                continue
            if status != 0:
                raise make_error(status, "rwkvrt_tokenizer_encode")
            return list(ids[:count.value])

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of `ids` (may be invalid UTF-8 if they end mid-character).  Raises
        InvalidArgumentError for an id outside the vocabulary."""
        buffer_ids, n = int32_buffer(ids)
        handle = self._handle()
        size = ctypes.c_size_t(0)
        capacity = 16 * n
        while True:
            out = ctypes.create_string_buffer(max(capacity, 1))
            status = _lib.lib().rwkvrt_tokenizer_decode(handle, buffer_ids, n, out, capacity,
                                                        ctypes.byref(size))
            if status == BufferTooSmallError.STATUS and size.value > capacity:
                capacity = size.value
                continue
            if status != 0:
                raise make_error(status, "rwkvrt_tokenizer_decode")
            return out.raw[:size.value]

    def decode(self, ids: Iterable[int], errors: str = "strict") -> str:
        """The text of `ids`; `errors` is the UTF-8 decoding policy ("strict", "replace", ...)."""
        return self.decode_bytes(ids).decode("utf-8", errors)

    def __repr__(self) -> str:
        return f"<rwkvrt.Tokenizer kind={self.kind!r} vocab_size={self.vocab_size}>"
