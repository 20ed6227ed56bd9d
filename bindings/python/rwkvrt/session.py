"""Sessions (a recurrent state plus its sampler) and streaming generations."""

from __future__ import annotations

import ctypes
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from . import _lib
from ._resource import Owned, float_input, float_output, int32_buffer
from .errors import BufferTooSmallError, call, make_error
from .types import FinishReason, LogitsMode, Piece, SamplingParams

if TYPE_CHECKING:
    from .batch import PrefixCache
    from .model import Model


class Session(Owned):
    """A recurrent state plus the scratch memory to advance it, and its sampler.

    Make one with ``model.session()`` (or ``Session(model)``); it starts at the model's initial
    state and keeps the model alive until it is closed.  A session must be used by one thread at
    a time, except ``cancel()``, which any thread may call at any time while it is open.

    A ``Generation`` (from ``generate``) drives its session while it runs.  Calling any other
    method of the session (other than ``cancel`` and the read-only properties) first ends an
    unfinished generation as cancelled, so an abandoned iterator never blocks the session; the
    state then holds the prompt plus the tokens generated up to that point.

    ``close()`` frees the C session now (also at the end of a ``with`` block).
    """

    _what = "session"

    def __init__(self, model: "Model", _ptr: Any = None):
        if _ptr is None:
            _ptr = _lib.session_p()
            call("rwkvrt_session_create", model._handle(), ctypes.byref(_ptr))
        self._cancel_lock = threading.Lock()
        # The generation in progress: a weak reference (no Session <-> Generation cycle, so
        # dropping both frees the session at once), plus whether the C side still runs one.
        self._generation_ref: weakref.ref | None = None
        self._generating = False
        self._last_finish_reason = FinishReason.NONE
        self._prefix_cache: PrefixCache | None = None
        super().__init__(_ptr, "rwkvrt_session_free", [model])
        self._model = model
        self._n_vocab = model.info.n_vocab
        self._state_floats = model.info.state_floats

    def _free(self, ptr: Any) -> None:
        # Wait for a cancel() running on another thread before the handle goes away.
        with self._cancel_lock:
            super()._free(ptr)

    def _ready(self) -> Any:
        """The handle, after ending an abandoned generation."""
        handle = self._handle()
        if self._generating:
            generation = self._current_generation()
            if generation is not None:
                generation.close()
            else:  # its Generation object is gone: end it here
                self._end_orphaned_generation()
        return handle

    def _current_generation(self) -> "Generation | None":
        if not self._generating or self._generation_ref is None:
            return None
        return self._generation_ref()

    def _end_orphaned_generation(self) -> None:
        self.cancel()
        try:
            while True:
                piece = self._next_piece()
                if piece.finished:
                    self._last_finish_reason = piece.finish
                    break
        except Exception:
            self._last_finish_reason = FinishReason.CANCELLED
        finally:
            self._generating = False

    # -- properties --------------------------------------------------------------------------------

    @property
    def model(self) -> "Model":
        return self._model

    @property
    def n_vocab(self) -> int:
        return self._n_vocab

    @property
    def last_finish_reason(self) -> FinishReason:
        """How the last finished generation of this session ended (NONE before the first)."""
        return self._last_finish_reason

    # -- state -------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Returns to the model's (or the loaded state-tuning file's) initial state."""
        call("rwkvrt_session_reset", self._ready())

    def save_state(self) -> bytes:
        """The state as a self-describing blob (checksummed; loadable into a session of the same
        model on any backend and machine).  Holds no logits: prompt before generating again."""
        handle = self._ready()
        size = ctypes.c_size_t(0)
        call("rwkvrt_session_save_state", handle, None, 0, ctypes.byref(size))
        while True:
            buffer = ctypes.create_string_buffer(size.value)
            capacity = size.value
            status = _lib.lib().rwkvrt_session_save_state(handle, buffer, capacity,
                                                          ctypes.byref(size))
            if status == BufferTooSmallError.STATUS and size.value > capacity:
                continue
            if status != 0:
                raise make_error(status, "rwkvrt_session_save_state")
            return buffer.raw[:size.value]

    def load_state(self, blob: bytes | bytearray | memoryview) -> None:
        """Replaces the state with a blob from save_state, validated completely first.  Raises
        FormatError (not a state blob, truncated), CorruptStateError (checksum) or
        StateMismatchError (another model)."""
        data = bytes(blob)
        call("rwkvrt_session_load_state", self._ready(), data, len(data))

    @property
    def state(self) -> bytes:
        """The state blob (save_state); assigning a blob loads it (load_state)."""
        return self.save_state()

    @state.setter
    def state(self, blob: bytes | bytearray | memoryview) -> None:
        self.load_state(blob)

    def export_state(self, out: Any = None) -> Any:
        """The canonical fp32 state (layout: Model.state_tensors) as array('f'), or written into
        `out` (a writable float32 buffer, e.g. a numpy array) and returned."""
        result, view = float_output(self._state_floats, out)
        call("rwkvrt_session_export_state", self._ready(), view, self._state_floats)
        return result

    def import_state(self, values: Any) -> None:
        """Replaces the state with canonical fp32 values (exactly model.info.state_floats).
        Raises StateMismatchError for a wrong count."""
        data, n = float_input(values)
        call("rwkvrt_session_import_state", self._ready(), data, n)

    def load_initial_state(self, path: str | os.PathLike) -> None:
        """Loads a state-tuning file (.pth/.safetensors with blocks.<i>.att.time_state tensors)
        and makes it the initial state: the session is reset to it now and on every reset()."""
        call("rwkvrt_session_load_initial_state", self._ready(), os.fsencode(path))

    # -- feeding tokens ----------------------------------------------------------------------------

    def step(self, token: int, logits: bool = True, out: Any = None) -> Any:
        """Feeds one token (RNN mode).  Returns the n_vocab logits that follow it as array('f')
        (or in `out`, a writable float32 buffer), or None with logits=False."""
        handle = self._ready()
        if not logits:
            call("rwkvrt_session_step", handle, int(token), None, 0)
            return None
        result, view = float_output(self._n_vocab, out)
        call("rwkvrt_session_step", handle, int(token), view, self._n_vocab)
        return result

    def feed(self, tokens: Iterable[int], logits: LogitsMode | str = LogitsMode.LAST,
             out: Any = None) -> Any:
        """Feeds tokens at once (sequence mode; equal to step() on each up to fp32 rounding).

        logits: "last" (default) returns the n_vocab logits after the last token; "all" returns
        n_tokens x n_vocab floats, row-major (row i follows tokens[i]); "none" returns None and
        only advances the state.  Results are array('f'), or written into `out`.  Raises
        InvalidArgumentError for an empty list or an id outside the vocabulary (the state is then
        unchanged)."""
        mode = LogitsMode[logits.upper()] if isinstance(logits, str) else LogitsMode(logits)
        ids, n = int32_buffer(tokens)
        handle = self._ready()
        if mode == LogitsMode.NONE:
            call("rwkvrt_session_feed", handle, ids, n, int(mode), None, 0)
            return None
        count = self._n_vocab * (n if mode == LogitsMode.ALL else 1)
        result, view = float_output(count, out)
        call("rwkvrt_session_feed", handle, ids, n, int(mode), view, count)
        return result

    def logits(self, out: Any = None) -> Any:
        """The logits the session remembers (after the last token fed with logits; the next
        generation samples from them) as array('f') of n_vocab floats, or written into `out`.
        Raises InvalidArgumentError when there are none (nothing fed with logits since creation,
        reset or a state load)."""
        result, view = float_output(self._n_vocab, out)
        call("rwkvrt_session_get_logits", self._ready(), view, self._n_vocab)
        return result

    # -- prompts and generation -------------------------------------------------------------------

    def prompt(self, prompt: "str | bytes | Sequence[int]") -> None:
        """Feeds a prompt, keeping the logits after it for the next generation.  A str is encoded
        as UTF-8 and tokenized with the model's tokenizer, as are bytes; anything else is taken as
        token ids.  Raises InvalidArgumentError (empty prompt, bad id) or UnsupportedError (text
        without a tokenizer)."""
        handle = self._ready()
        if isinstance(prompt, (str, bytes, bytearray, memoryview)):
            data = prompt.encode("utf-8") if isinstance(prompt, str) else bytes(prompt)
            call("rwkvrt_session_prompt", handle, data, len(data))
        else:
            ids, n = int32_buffer(prompt)
            call("rwkvrt_session_prompt_tokens", handle, ids, n)

    def set_sampling(self, params: SamplingParams) -> None:
        """Replaces the sampler; its penalty history and random stream start afresh from
        params.seed.  A new session samples with SamplingParams() defaults."""
        c, keep = params._to_c()
        call("rwkvrt_session_set_sampling", self._ready(), ctypes.byref(c))
        del keep

    def generate(self, prompt: "str | bytes | Sequence[int] | None" = None, *,
                 max_tokens: int | None = None, stop: str | Sequence[str] = (),
                 sampling: SamplingParams | None = None,
                 stop_at_eos: bool = True) -> "Generation":
        """Starts a generation and returns it as an iterator of text pieces (str).

        prompt: fed first (see prompt()); without one the session must already have logits (a
            prompt, or step/feed with logits, since creation, reset or a state load).
        max_tokens: tokens to generate at most (None = the library's default, 256; 0 = no limit).
        stop: stop string(s); the text is cut before the first occurrence (no NUL characters).
        sampling: if given, replaces the session's sampler first (see set_sampling); it stays
            in effect for later generations.
        stop_at_eos: the tokenizer's end-of-text token ends the generation.

        Every sampled token is fed to the state (also the one that ends the generation).  Raises
        InvalidArgumentError (no logits yet, an empty stop string)."""
        handle = self._ready()
        if prompt is not None:
            self.prompt(prompt)
        if sampling is not None:
            self.set_sampling(sampling)
        params = _lib.lib().rwkvrt_generate_params_default()
        if max_tokens is not None:
            if max_tokens < 0:
                raise ValueError("max_tokens must be >= 0 (0 = no limit)")
            params.max_tokens = max_tokens
        stops = [stop] if isinstance(stop, str) else list(stop)
        if any("\x00" in s for s in stops):
            raise ValueError("stop strings cannot contain NUL characters")
        encoded = [s.encode("utf-8") for s in stops]
        if encoded:
            array_type = ctypes.c_char_p * len(encoded)
            params.stop = ctypes.cast(array_type(*encoded), ctypes.POINTER(ctypes.c_char_p))
            params.n_stop = len(encoded)
        params.stop_at_eos = 1 if stop_at_eos else 0
        # The callee copies the stop strings, so `encoded` need only outlive this call.
        call("rwkvrt_session_generate_begin", handle, ctypes.byref(params))
        generation = Generation(self)
        self._generation_ref = weakref.ref(generation)
        self._generating = True
        return generation

    def _next_piece(self) -> Piece:
        piece = _lib.rwkvrt_generate_piece()
        call("rwkvrt_session_generate_next", self._handle(), ctypes.byref(piece))
        return Piece._from_c(piece)

    def cancel(self) -> None:
        """Asks the generation in progress to stop before its next token (it then finishes with
        FinishReason.CANCELLED, feeding nothing more).  Thread-safe; without a generation in
        progress, or on a closed session, it does nothing.  A cancel that arrives before the
        generation begins is discarded."""
        with self._cancel_lock:
            ptr = self._ptr
            if ptr is None:
                return
            call("rwkvrt_session_cancel", ptr)

    def fork(self) -> "Session":
        """A new session with a copy of this one's state, logits, sampler (random stream and
        penalty history) and initial state (and its prefix cache); the two evolve independently."""
        handle = self._ready()
        ptr = _lib.session_p()
        call("rwkvrt_session_fork", handle, ctypes.byref(ptr))
        copy = Session(self._model, _ptr=ptr)
        if self._prefix_cache is not None:
            # The C fork shares the cache, so the copy must keep it alive as well.
            copy._prefix_cache = self._prefix_cache
            copy._depend_on(self._prefix_cache)
        return copy

    # -- prefix cache ------------------------------------------------------------------------------

    @property
    def prefix_cache(self) -> "PrefixCache | None":
        """The attached prefix cache, or None.  Assign a PrefixCache of the same model to attach
        it (prompts then resume from the longest cached prefix), None to detach.  The session
        keeps an attached cache alive."""
        return self._prefix_cache

    @prefix_cache.setter
    def prefix_cache(self, cache: "PrefixCache | None") -> None:
        handle = self._ready()
        call("rwkvrt_session_set_prefix_cache", handle,
             cache._handle() if cache is not None else None)
        old, self._prefix_cache = self._prefix_cache, cache
        if cache is not None:
            self._depend_on(cache)
        if old is not None:
            self._stop_depending_on(old)

    @property
    def prefix_cache_hit(self) -> int:
        """Tokens of the last prompt reused from the prefix cache (0 if none)."""
        n = ctypes.c_size_t(0)
        call("rwkvrt_session_prefix_cache_hit", self._handle(), ctypes.byref(n))
        return n.value

    def __repr__(self) -> str:
        return f"<rwkvrt.Session of {self._model!r}{' (closed)' if self.closed else ''}>"


class Generation:
    """A generation in progress, as an iterator of the text it streams (non-empty str pieces).

    Iterating drives the session: each step samples a token, feeds it, and yields the text it
    releases.  When it ends, ``finish_reason`` tells why (also ``session.last_finish_reason``),
    ``text`` holds all of it and ``tokens`` the sampled ids.  ``pieces()`` iterates the raw steps
    (Piece objects, including empty ones and the final one) instead.

    ``close()`` (or leaving a ``with`` block, or using the session for anything else) ends an
    unfinished generation as cancelled.  ``cancel()`` may be called from any thread.
    """

    def __init__(self, session: Session):
        """Internal: use Session.generate."""
        self._session = session
        self._texts: list[str] = []
        self.tokens: list[int] = []
        self.n_generated = 0
        self.finish_reason = FinishReason.NONE

    @property
    def session(self) -> Session:
        return self._session

    @property
    def finished(self) -> bool:
        return self.finish_reason != FinishReason.NONE

    @property
    def text(self) -> str:
        """The text streamed so far (all of it once finished)."""
        return "".join(self._texts)

    def _record(self, piece: Piece) -> Piece:
        if piece.token >= 0:
            self.tokens.append(piece.token)
        if piece.text:
            self._texts.append(piece.text)
        self.n_generated = piece.n_generated
        if piece.finished:
            self._finish(piece.finish)
        return piece

    def _finish(self, reason: FinishReason) -> None:
        self.finish_reason = reason
        self._session._last_finish_reason = reason
        self._release_session()

    def _release_session(self) -> None:
        if self._session._current_generation() is self:
            self._session._generating = False

    def _step(self) -> Piece:
        try:
            return self._record(self._session._next_piece())
        except Exception:
            # The generation cannot go on (e.g. a backend failure): release the session.
            self._release_session()
            raise

    def pieces(self) -> Iterator[Piece]:
        """Iterates the remaining steps as Piece objects; the last one is finished."""
        while not self.finished:
            yield self._step()

    def __iter__(self) -> "Generation":
        return self

    def __next__(self) -> str:
        while not self.finished:
            piece = self._step()
            if piece.text:
                return piece.text
        raise StopIteration

    def read(self) -> str:
        """Runs the generation to its end and returns all of its text."""
        for _ in self:
            pass
        return self.text

    def cancel(self) -> None:
        """Asks the generation to stop before its next token (thread-safe)."""
        self._session.cancel()

    def close(self) -> None:
        """Ends the generation now if it is unfinished (finish reason CANCELLED; the text held
        back is still appended to `text`).  Idempotent."""
        if self.finished or self._session._current_generation() is not self:
            return
        self._session.cancel()
        try:
            while not self.finished:
                self._step()
        except Exception:
            self._finish(FinishReason.CANCELLED)

    def __enter__(self) -> "Generation":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<rwkvrt.Generation {self.n_generated} tokens, "
                f"finish {self.finish_reason.name if self.finished else 'pending'}>")
