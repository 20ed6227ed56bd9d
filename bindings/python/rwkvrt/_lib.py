"""ctypes declarations of the rwkvrt C ABI (sdk/include/rwkvrt/rwkvrt.h), and loading the library.

Every struct here mirrors its C counterpart field for field, in order, with the C types' sizes, so
that ``ctypes.sizeof`` equals the C ``sizeof`` (the tests compare both against a compiled probe).
Every function gets ``argtypes`` and ``restype``; nothing is called through an undeclared
prototype.

The shared library is loaded on first use (``lib()``), not at import, so ``import rwkvrt`` works
on a machine without the library and fails only when something needs it.  Where it is looked for,
in order:

1. the file named by the environment variable ``RWKVRT_LIBRARY`` (a failure to load it is an
   error, never a silent fall-through);
2. a copy installed next to this package (``rwkvrt/librwkvrt.so`` and the like);
3. the build tree of the source checkout this package sits in (``<repo>/build/lib``), when the
   package is used from ``bindings/python`` of a checkout;
4. the system's search path, through ``ctypes.util.find_library("rwkvrt")``.

This module is internal: the public API is the ``rwkvrt`` package.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_float,
    c_int,
    c_int32,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path

#: The ABI version this binding is written against (RWKVRT_ABI_VERSION of the header).
ABI_VERSION = 2
#: The shared library's SONAME version: changes only with an incompatible ABI (appending fields
#: and functions raises ABI_VERSION but keeps the library name).
SONAME_VERSION = 1

# C enums are int-sized on every platform rwkvrt supports.
c_enum = c_int


# ---- opaque handles -----------------------------------------------------------------------------

class rwkvrt_model(Structure):
    """Opaque."""


class rwkvrt_session(Structure):
    """Opaque."""


class rwkvrt_tokenizer(Structure):
    """Opaque."""


class rwkvrt_prefix_cache(Structure):
    """Opaque."""


class rwkvrt_batch(Structure):
    """Opaque."""


model_p = POINTER(rwkvrt_model)
session_p = POINTER(rwkvrt_session)
tokenizer_p = POINTER(rwkvrt_tokenizer)
prefix_cache_p = POINTER(rwkvrt_prefix_cache)
batch_p = POINTER(rwkvrt_batch)


# ---- callbacks ----------------------------------------------------------------------------------

# void (*rwkvrt_log_fn)(void* user_data, rwkvrt_log_level level, const char* message)
log_fn = CFUNCTYPE(None, c_void_p, c_enum, c_char_p)
# int (*rwkvrt_progress_fn)(void* user_data, float fraction, const char* stage)
progress_fn = CFUNCTYPE(c_int, c_void_p, c_float, c_char_p)


# ---- structs ------------------------------------------------------------------------------------

class rwkvrt_backend_info(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("name", c_char_p),
        ("description", c_char_p),
        ("path", c_char_p),
        ("abi_version", c_uint32),
        ("score", c_float),
        ("device_count", c_int32),
        ("unavailable_reason", c_char_p),
    ]


class rwkvrt_device_info(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("name", c_char_p),
        ("memory_total", c_uint64),
        ("memory_free", c_uint64),
    ]


class rwkvrt_model_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("backend", c_char_p),
        ("device", c_int32),
        ("n_threads", c_int32),
        ("weights", c_enum),
        ("group_norm_eps", c_float),
        ("progress", progress_fn),
        ("progress_user_data", c_void_p),
        ("tokenizer_path", c_char_p),
        ("matmul_precision", c_enum),  # since ABI 2
    ]


class rwkvrt_model_info(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("rwkv_version", c_uint32),
        ("version_name", c_char_p),
        ("file_format", c_char_p),
        ("n_layer", c_uint32),
        ("n_embd", c_uint32),
        ("n_att", c_uint32),
        ("n_ffn", c_uint32),
        ("n_head", c_uint32),
        ("head_size", c_uint32),
        ("n_vocab", c_uint32),
        ("file_dtype", c_enum),
        ("weight_dtype", c_enum),
        ("n_params", c_uint64),
        ("weight_bytes", c_uint64),
        ("state_floats", c_uint64),
        ("group_norm_eps", c_float),
        ("backend", c_char_p),
        ("device", c_int32),
        ("has_initial_state", c_uint32),
    ]


class rwkvrt_state_tensor_info(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("name", c_char_p),
        ("offset", c_uint64),
        ("n_dims", c_uint32),
        ("shape", c_uint64 * 4),
    ]


class rwkvrt_tokenizer_info(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("kind", c_char_p),
        ("vocab_size", c_uint32),
        ("eos_id", c_int32),
    ]


class rwkvrt_sampling_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("mode", c_enum),
        ("temperature", c_float),
        ("top_k", c_int32),
        ("top_p", c_float),
        ("min_p", c_float),
        ("repetition_penalty", c_float),
        ("presence_penalty", c_float),
        ("frequency_penalty", c_float),
        ("penalty_decay", c_float),
        ("penalty_last_n", c_int32),
        ("seed", c_uint64),
        ("banned", POINTER(c_int32)),
        ("n_banned", c_size_t),
        ("logit_bias_ids", POINTER(c_int32)),
        ("logit_bias_values", POINTER(c_float)),
        ("n_logit_bias", c_size_t),
    ]


class rwkvrt_generate_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("max_tokens", c_uint32),
        ("stop", POINTER(c_char_p)),
        ("n_stop", c_size_t),
        ("stop_at_eos", c_uint32),
    ]


class rwkvrt_generate_piece(Structure):
    # `text` is not NUL-terminated in general (text_len counts its bytes), so it is declared as a
    # plain pointer and read with ctypes.string_at(text, text_len).
    _fields_ = [
        ("text", POINTER(c_char)),
        ("text_len", c_size_t),
        ("token", c_int32),
        ("finish", c_enum),
        ("n_generated", c_uint32),
    ]


# int (*rwkvrt_piece_fn)(void* user_data, const rwkvrt_generate_piece* piece)
piece_fn = CFUNCTYPE(c_int, c_void_p, POINTER(rwkvrt_generate_piece))

#: Structs whose C layout the tests check against a compiled probe: name -> ctypes type.
STRUCTS = {
    "rwkvrt_backend_info": rwkvrt_backend_info,
    "rwkvrt_device_info": rwkvrt_device_info,
    "rwkvrt_model_params": rwkvrt_model_params,
    "rwkvrt_model_info": rwkvrt_model_info,
    "rwkvrt_state_tensor_info": rwkvrt_state_tensor_info,
    "rwkvrt_tokenizer_info": rwkvrt_tokenizer_info,
    "rwkvrt_sampling_params": rwkvrt_sampling_params,
    "rwkvrt_generate_params": rwkvrt_generate_params,
    "rwkvrt_generate_piece": rwkvrt_generate_piece,
}


# ---- functions ----------------------------------------------------------------------------------

status = c_enum
f32_p = POINTER(c_float)
i32_p = POINTER(c_int32)
size_p = POINTER(c_size_t)

# name: (restype, argtypes), in the header's order.
_PROTOTYPES = {
    # errors, versions, logging
    "rwkvrt_last_error": (c_char_p, []),
    "rwkvrt_status_name": (c_char_p, [status]),
    "rwkvrt_abi_version": (c_uint32, []),
    "rwkvrt_version_string": (c_char_p, []),
    "rwkvrt_set_log_callback": (None, [log_fn, c_void_p, c_enum]),
    # backends
    "rwkvrt_backend_count": (status, [size_p]),
    "rwkvrt_backend_get_info": (status, [c_size_t, POINTER(rwkvrt_backend_info)]),
    "rwkvrt_backend_get_device": (status, [c_size_t, c_int32, POINTER(rwkvrt_device_info)]),
    "rwkvrt_backend_load": (status, [c_char_p, size_p]),
    # models
    "rwkvrt_model_params_default": (rwkvrt_model_params, []),
    "rwkvrt_model_load": (status, [c_char_p, POINTER(rwkvrt_model_params), POINTER(model_p)]),
    "rwkvrt_model_free": (None, [model_p]),
    "rwkvrt_model_get_info": (status, [model_p, POINTER(rwkvrt_model_info)]),
    "rwkvrt_model_state_tensor_count": (status, [model_p, size_p]),
    "rwkvrt_model_state_tensor_info": (status, [model_p, c_size_t,
                                                POINTER(rwkvrt_state_tensor_info)]),
    # sessions
    "rwkvrt_session_create": (status, [model_p, POINTER(session_p)]),
    "rwkvrt_session_free": (None, [session_p]),
    "rwkvrt_session_reset": (status, [session_p]),
    "rwkvrt_session_feed": (status, [session_p, i32_p, c_size_t, c_enum, f32_p, c_size_t]),
    "rwkvrt_session_step": (status, [session_p, c_int32, f32_p, c_size_t]),
    "rwkvrt_session_export_state": (status, [session_p, f32_p, c_size_t]),
    "rwkvrt_session_import_state": (status, [session_p, f32_p, c_size_t]),
    "rwkvrt_session_save_state": (status, [session_p, c_void_p, c_size_t, size_p]),
    "rwkvrt_session_load_state": (status, [session_p, c_void_p, c_size_t]),
    # tokenizers
    "rwkvrt_tokenizer_load": (status, [c_char_p, POINTER(tokenizer_p)]),
    "rwkvrt_tokenizer_create_byte": (status, [POINTER(tokenizer_p)]),
    "rwkvrt_tokenizer_free": (None, [tokenizer_p]),
    "rwkvrt_tokenizer_get_info": (status, [tokenizer_p, POINTER(rwkvrt_tokenizer_info)]),
    "rwkvrt_tokenizer_encode": (status, [tokenizer_p, c_char_p, c_size_t, i32_p, c_size_t,
                                         size_p]),
    "rwkvrt_tokenizer_decode": (status, [tokenizer_p, i32_p, c_size_t, c_void_p, c_size_t,
                                         size_p]),
    "rwkvrt_model_get_tokenizer": (status, [model_p, POINTER(tokenizer_p)]),
    # sampling
    "rwkvrt_sampling_params_default": (rwkvrt_sampling_params, []),
    "rwkvrt_session_set_sampling": (status, [session_p, POINTER(rwkvrt_sampling_params)]),
    # prompts and generation
    "rwkvrt_session_prompt": (status, [session_p, c_char_p, c_size_t]),
    "rwkvrt_session_prompt_tokens": (status, [session_p, i32_p, c_size_t]),
    "rwkvrt_session_get_logits": (status, [session_p, f32_p, c_size_t]),
    "rwkvrt_generate_params_default": (rwkvrt_generate_params, []),
    "rwkvrt_session_generate_begin": (status, [session_p, POINTER(rwkvrt_generate_params)]),
    "rwkvrt_session_generate_next": (status, [session_p, POINTER(rwkvrt_generate_piece)]),
    "rwkvrt_session_generate": (status, [session_p, POINTER(rwkvrt_generate_params), piece_fn,
                                         c_void_p, POINTER(c_enum)]),
    "rwkvrt_session_cancel": (status, [session_p]),
    # fork, state files, prefix cache, batches
    "rwkvrt_session_fork": (status, [session_p, POINTER(session_p)]),
    "rwkvrt_session_load_initial_state": (status, [session_p, c_char_p]),
    "rwkvrt_prefix_cache_create": (status, [model_p, c_uint64, POINTER(prefix_cache_p)]),
    "rwkvrt_prefix_cache_free": (None, [prefix_cache_p]),
    "rwkvrt_session_set_prefix_cache": (status, [session_p, prefix_cache_p]),
    "rwkvrt_session_prefix_cache_hit": (status, [session_p, size_p]),
    "rwkvrt_batch_create": (status, [model_p, c_size_t, POINTER(batch_p)]),
    "rwkvrt_batch_free": (None, [batch_p]),
    "rwkvrt_batch_step": (status, [batch_p, POINTER(session_p), i32_p, c_size_t, f32_p,
                                   c_size_t]),
    "rwkvrt_batch_generate_next": (status, [batch_p, POINTER(session_p), c_size_t,
                                            POINTER(rwkvrt_generate_piece)]),
}

#: Every C function this binding declares (the tests check the library exports each one).
FUNCTION_NAMES = tuple(_PROTOTYPES)


# ---- loading ------------------------------------------------------------------------------------

class LibraryNotFoundError(OSError):
    """The rwkvrt shared library could not be found or loaded (see ``rwkvrt._lib`` for where it
    is looked for; set ``RWKVRT_LIBRARY`` to the file to use)."""


def _library_file_names() -> list[str]:
    if sys.platform == "win32":
        return ["rwkvrt.dll", "librwkvrt.dll"]
    if sys.platform == "darwin":
        return ["librwkvrt.dylib"]
    return ["librwkvrt.so", f"librwkvrt.so.{SONAME_VERSION}"]


def candidate_paths() -> list[str]:
    """Where the library is looked for, in order (the first that loads wins).  Used by the loader
    and in its error message."""
    found: list[str] = []
    package_dir = Path(__file__).resolve().parent
    for name in _library_file_names():
        found.append(str(package_dir / name))
    # <repo>/bindings/python/rwkvrt/_lib.py -> <repo>
    repo = package_dir.parent.parent.parent
    if (repo / "sdk" / "include" / "rwkvrt" / "rwkvrt.h").is_file():
        for name in _library_file_names():
            found.append(str(repo / "build" / "lib" / name))
    return found


def _declare(cdll: ctypes.CDLL) -> ctypes.CDLL:
    missing = []
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(cdll, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise LibraryNotFoundError(
            f"{cdll._name} lacks {len(missing)} rwkvrt functions ({', '.join(missing[:5])}...); "
            "it is too old for this binding")
    abi = cdll.rwkvrt_abi_version()
    if abi < ABI_VERSION:
        raise LibraryNotFoundError(
            f"{cdll._name} implements ABI {abi}; this binding needs {ABI_VERSION} or newer")
    return cdll


def _load() -> ctypes.CDLL:
    explicit = os.environ.get("RWKVRT_LIBRARY")
    if explicit:
        try:
            return _declare(ctypes.CDLL(explicit))
        except OSError as e:
            raise LibraryNotFoundError(f"RWKVRT_LIBRARY={explicit} could not be loaded: {e}") from e
    tried = []
    for path in candidate_paths():
        if os.path.isfile(path):
            try:
                return _declare(ctypes.CDLL(path))
            except OSError as e:
                tried.append(f"{path} ({e})")
        else:
            tried.append(path)
    system = ctypes.util.find_library("rwkvrt")
    if system:
        try:
            return _declare(ctypes.CDLL(system))
        except OSError as e:
            tried.append(f"{system} ({e})")
    else:
        tried.append("the system library path")
    raise LibraryNotFoundError(
        "the rwkvrt shared library was not found; set RWKVRT_LIBRARY to its path. Tried: "
        + "; ".join(tried))


_lock = threading.Lock()
_cdll: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    """The loaded, declared library (loaded on the first call; thread-safe).

    Raises LibraryNotFoundError if no usable library is found."""
    global _cdll
    if _cdll is None:
        with _lock:
            if _cdll is None:
                _cdll = _load()
    return _cdll


def library_path() -> str:
    """The file the library was loaded from (loads it if needed)."""
    return lib()._name
