"""Prefix caches and batched decoding across sessions of one model."""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Sequence

from . import _lib
from ._resource import Owned, float_output, int32_buffer
from .errors import call
from .types import Piece

if TYPE_CHECKING:
    from .model import Model
    from .session import Generation, Session


class PrefixCache(Owned):
    """States after prompts, shared by the sessions of one model (thread-safe): a prompt that
    starts with a cached token prefix resumes from that state and feeds only the rest.

    Attach it with ``session.prefix_cache = cache``.  ``max_bytes`` bounds the memory of the
    cached states (least recently used go first).  It keeps its model alive; sessions keep an
    attached cache alive, so ``close()`` frees it once no session uses it."""

    _what = "prefix cache"

    def __init__(self, model: "Model", max_bytes: int):
        ptr = _lib.prefix_cache_p()
        call("rwkvrt_prefix_cache_create", model._handle(), int(max_bytes), ctypes.byref(ptr))
        super().__init__(ptr, "rwkvrt_prefix_cache_free", [model])
        self._model = model

    @property
    def model(self) -> "Model":
        return self._model


def _session_array(sessions: Sequence["Session"], generating: bool) -> Any:
    # Sessions with a generation of their own in the call keep it; others end an abandoned one.
    handles = [s._handle() if generating else s._ready() for s in sessions]
    return (_lib.session_p * max(len(handles), 1))(*handles), len(handles)


class Batch(Owned):
    """Advances many sessions of one model by one token each in one forward pass (the basis of
    continuous batching: sessions may join and leave between calls).

    A batch is used by one thread at a time, and the sessions passed to a call must not be used
    elsewhere during it.  It keeps its model alive."""

    _what = "batch"

    def __init__(self, model: "Model", max_batch: int):
        ptr = _lib.batch_p()
        call("rwkvrt_batch_create", model._handle(), int(max_batch), ctypes.byref(ptr))
        super().__init__(ptr, "rwkvrt_batch_free", [model])
        self._model = model
        self._max_batch = int(max_batch)
        self._n_vocab = model.info.n_vocab

    @property
    def max_batch(self) -> int:
        return self._max_batch

    def step(self, sessions: Sequence["Session"], tokens: Sequence[int], logits: bool = True,
             out: Any = None) -> Any:
        """Feeds tokens[i] to sessions[i] (distinct sessions of the batch's model); equal to
        ``sessions[i].step(tokens[i])`` up to fp32 rounding.  Returns the logits as one array('f')
        of len(sessions) x n_vocab floats, row-major (or in `out`), or None with logits=False.
        Each session also keeps its logits for a later generation.  Everything is validated before
        any state changes."""
        if len(tokens) != len(sessions):
            raise ValueError(f"{len(sessions)} sessions but {len(tokens)} tokens")
        handle = self._handle()
        array, n = _session_array(sessions, generating=False)
        ids, _ = int32_buffer(tokens)
        if not logits:
            call("rwkvrt_batch_step", handle, array, ids, n, None, 0)
            return None
        result, view = float_output(n * self._n_vocab, out)
        call("rwkvrt_batch_step", handle, array, ids, n, view, n * self._n_vocab)
        return result

    def generate_next(self, generations: Sequence["Generation"]) -> list[Piece]:
        """Advances each generation (from ``session.generate(...)``, of distinct sessions) by one
        token in one forward pass; each samples with its own session's sampler.  Returns the piece
        of each, which is also recorded in its Generation (text, tokens, finish_reason), exactly
        as iterating it would.  Remove the finished ones before the next call."""
        for g in generations:
            if g.finished:
                raise ValueError("a generation in the batch has already finished")
            if g.session._current_generation() is not g:
                raise ValueError("a generation in the batch is not its session's current one")
        handle = self._handle()
        array, n = _session_array([g.session for g in generations], generating=True)
        pieces = (_lib.rwkvrt_generate_piece * max(n, 1))()
        call("rwkvrt_batch_generate_next", handle, array, n, pieces)
        # Copy every piece before anything else calls into the sessions (the text is theirs).
        copies = [Piece._from_c(pieces[i]) for i in range(n)]
        return [g._record(p) for g, p in zip(generations, copies)]
