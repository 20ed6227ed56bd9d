"""Enumerations and plain value types of the rwkvrt API.  None of these own C resources; the
dataclasses are copies of what the library reported, valid for as long as you keep them."""

from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from . import _lib
from ._resource import decode_c_string


class WeightType(enum.IntEnum):
    """Precision a model's matrices are prepared in (rwkvrt_weight_type)."""
    AUTO = 0
    F32 = 1
    BF16 = 2
    F16 = 3


class DType(enum.IntEnum):
    """Element type of a checkpoint's or a backend's matrices (rwkvrt_dtype)."""
    F32 = 0
    F16 = 1
    BF16 = 2
    Q4_0 = 3
    Q4_1 = 4
    Q5_0 = 5
    Q5_1 = 6
    Q8_0 = 7


class LogitsMode(enum.IntEnum):
    """Which logits Session.feed returns (rwkvrt_logits_mode)."""
    NONE = 0
    LAST = 1
    ALL = 2


class SamplingMode(enum.IntEnum):
    """rwkvrt_sampling_mode: STANDARD (llama.cpp's order) or REFERENCE_PIPELINE (the official
    rwkv package's PIPELINE sampler)."""
    STANDARD = 0
    REFERENCE_PIPELINE = 1


class FinishReason(enum.IntEnum):
    """Why a generation ended (rwkvrt_finish_reason); NONE while it goes on."""
    NONE = 0
    STOP = 1
    LENGTH = 2
    EOS = 3
    CANCELLED = 4


class LogLevel(enum.IntEnum):
    """Severity of a library log line (rwkvrt_log_level)."""
    ERROR = 0
    WARN = 1
    INFO = 2
    DEBUG = 3


def _enum_or_int(cls, value: int):
    """`value` as a member of `cls`, or the plain int for a value a newer library added."""
    try:
        return cls(value)
    except ValueError:
        return value


@dataclass(frozen=True)
class DeviceInfo:
    """One device of a backend (rwkvrt_device_info); memory in bytes, 0 if unknown."""
    name: str
    memory_total: int
    memory_free: int

    @classmethod
    def _from_c(cls, c: _lib.rwkvrt_device_info) -> "DeviceInfo":
        return cls(decode_c_string(c.name), c.memory_total, c.memory_free)


@dataclass(frozen=True)
class BackendInfo:
    """A backend plugin the library found (rwkvrt_backend_info).  `index` is its registry index;
    `unavailable_reason` is "" when it is usable."""
    index: int
    name: str
    description: str
    path: str
    abi_version: int
    score: float
    device_count: int
    unavailable_reason: str

    @property
    def usable(self) -> bool:
        """True if the backend can run on this machine."""
        return not self.unavailable_reason and self.score > 0 and self.device_count > 0

    @classmethod
    def _from_c(cls, index: int, c: _lib.rwkvrt_backend_info) -> "BackendInfo":
        return cls(index, decode_c_string(c.name), decode_c_string(c.description),
                   decode_c_string(c.path), c.abi_version, c.score, c.device_count,
                   decode_c_string(c.unavailable_reason))


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is (rwkvrt_model_info); see the C header for each field."""
    rwkv_version: int          # 40, 50, 51, 52, 60 or 70 (version x 10)
    version_name: str          # "4", "5.2", "7.0", ...
    file_format: str           # "pth", "safetensors", "rwkvcpp"
    n_layer: int
    n_embd: int
    n_att: int
    n_ffn: int
    n_head: int
    head_size: int
    n_vocab: int
    file_dtype: DType
    weight_dtype: DType
    n_params: int
    weight_bytes: int
    state_floats: int          # floats in the canonical state (Session.export_state)
    group_norm_eps: float
    backend: str
    device: int
    has_initial_state: bool

    @classmethod
    def _from_c(cls, c: _lib.rwkvrt_model_info) -> "ModelInfo":
        return cls(
            rwkv_version=c.rwkv_version, version_name=decode_c_string(c.version_name),
            file_format=decode_c_string(c.file_format), n_layer=c.n_layer, n_embd=c.n_embd,
            n_att=c.n_att, n_ffn=c.n_ffn, n_head=c.n_head, head_size=c.head_size,
            n_vocab=c.n_vocab, file_dtype=_enum_or_int(DType, c.file_dtype),
            weight_dtype=_enum_or_int(DType, c.weight_dtype), n_params=c.n_params,
            weight_bytes=c.weight_bytes, state_floats=c.state_floats,
            group_norm_eps=c.group_norm_eps, backend=decode_c_string(c.backend),
            device=c.device, has_initial_state=bool(c.has_initial_state))


@dataclass(frozen=True)
class StateTensorInfo:
    """One tensor of the canonical state: `offset` in floats from its start, row-major `shape`."""
    name: str
    offset: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of floats."""
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class TokenizerInfo:
    """rwkvrt_tokenizer_info: kind "world", "bpe" or "byte"; eos_id -1 if none."""
    kind: str
    vocab_size: int
    eos_id: int


@dataclass(frozen=True)
class Piece:
    """One step of a generation (a copy of rwkvrt_generate_piece).

    `text` is what this step releases (may be empty while bytes are held back: an incomplete
    UTF-8 character, or text that may begin a stop string); `token` the id sampled in this step
    (-1 if none); `finish` NONE while the generation goes on; `n_generated` tokens sampled so
    far."""
    text: str
    token: int
    finish: FinishReason
    n_generated: int

    @property
    def finished(self) -> bool:
        return self.finish != FinishReason.NONE

    @classmethod
    def _from_c(cls, c: _lib.rwkvrt_generate_piece) -> "Piece":
        raw = ctypes.string_at(c.text, c.text_len) if c.text_len else b""
        # The library promises valid UTF-8; "replace" keeps a stream alive if that ever breaks.
        return cls(raw.decode("utf-8", "replace"), c.token,
                   _enum_or_int(FinishReason, c.finish), c.n_generated)


@dataclass
class SamplingParams:
    """A session's sampler (rwkvrt_sampling_params; see the C header for each field's range).

    The defaults equal the library's (``rwkvrt_sampling_params_default``).  ``temperature=0`` is
    greedy.  The same ``seed`` reproduces a run bit for bit.  ``banned`` ids are never sampled;
    ``logit_bias`` maps ids to a value added to their logits."""
    mode: SamplingMode = SamplingMode.STANDARD
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    penalty_decay: float = 1.0
    penalty_last_n: int = -1
    seed: int = 0
    banned: Sequence[int] = ()
    logit_bias: Mapping[int, float] = field(default_factory=dict)

    @classmethod
    def greedy(cls) -> "SamplingParams":
        """Always the most likely token."""
        return cls(temperature=0.0)

    def _to_c(self) -> tuple[_lib.rwkvrt_sampling_params, list]:
        """The C struct, plus the arrays it points into (keep them alive during the call)."""
        c = _lib.lib().rwkvrt_sampling_params_default()
        c.mode = int(self.mode)
        c.temperature = self.temperature
        c.top_k = self.top_k
        c.top_p = self.top_p
        c.min_p = self.min_p
        c.repetition_penalty = self.repetition_penalty
        c.presence_penalty = self.presence_penalty
        c.frequency_penalty = self.frequency_penalty
        c.penalty_decay = self.penalty_decay
        c.penalty_last_n = self.penalty_last_n
        c.seed = self.seed
        keep = []
        banned = [int(t) for t in self.banned]
        if banned:
            arr = (ctypes.c_int32 * len(banned))(*banned)
            keep.append(arr)
            c.banned = arr
            c.n_banned = len(banned)
        if self.logit_bias:
            ids = (ctypes.c_int32 * len(self.logit_bias))(*map(int, self.logit_bias.keys()))
            values = (ctypes.c_float * len(self.logit_bias))(*map(float, self.logit_bias.values()))
            keep += [ids, values]
            c.logit_bias_ids = ids
            c.logit_bias_values = values
            c.n_logit_bias = len(self.logit_bias)
        return c, keep
