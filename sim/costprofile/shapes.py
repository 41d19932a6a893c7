"""Per-shard transformer dimensions and the FLOP/byte counts used to scale measured costs.

A TP-``t`` shard of a Llama-shaped model has ``heads/t`` query heads, ``max(1, kv_heads/t)`` KV heads
(KV heads are replicated when ``t`` exceeds them, as vLLM does), ``intermediate/t`` MLP columns and
``vocab/t`` LM-head rows; ``hidden`` and ``head_dim`` are whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warmsim.sim.models import ModelShape

#: Weight tensors per transformer layer: q, k, v, o, gate, up, down and two RMSNorm weights.
TENSORS_PER_LAYER = 9
#: Non-layer tensors: embedding, final norm, LM head.
TENSORS_OUTSIDE_LAYERS = 3


@dataclass(frozen=True)
class ShardDims:
    """Dimensions of one GPU's shard of a Llama-shaped model."""

    shape: str
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tp: int
    dtype_bytes: int = 2

    @property
    def layer_params(self) -> int:
        """Weights of one layer of this shard."""
        h, d = self.hidden, self.head_dim
        return 2 * h * self.heads * d + 2 * h * self.kv_heads * d + 3 * h * self.intermediate + 2 * h

    @property
    def layer_bytes(self) -> int:
        return self.layer_params * self.dtype_bytes

    @property
    def head_bytes(self) -> int:
        """LM head shard plus final norm."""
        return (self.vocab * self.hidden + self.hidden) * self.dtype_bytes

    @property
    def kv_bytes_per_token_layer(self) -> int:
        """K and V bytes of one token in one layer of this shard."""
        return 2 * self.kv_heads * self.head_dim * self.dtype_bytes

    def layer_flops(self, tokens: int, batch: int = 1) -> float:
        """Prefill FLOPs of one layer: GEMMs (2 per weight per token) plus causal attention."""
        total = tokens * batch
        attn = 2.0 * batch * tokens * tokens * self.heads * self.head_dim  # QK^T + PV, causal half
        return 2.0 * self.layer_params * total + attn

    def key(self) -> tuple[Any, ...]:
        return (self.shape, self.hidden, self.heads, self.kv_heads, self.head_dim, self.intermediate,
                self.vocab, self.tp)

    def as_row(self) -> dict[str, Any]:
        """The shape columns of the prefill/decode tables."""
        return {"shape": self.shape, "hidden": self.hidden, "heads": self.heads, "kv_heads": self.kv_heads,
                "head_dim": self.head_dim, "intermediate": self.intermediate, "vocab": self.vocab, "tp": self.tp}


def shard_dims(shape: ModelShape, tp: int) -> ShardDims:
    """The per-GPU shard of ``shape`` under tensor parallelism ``tp``."""
    return ShardDims(shape=shape.name, hidden=shape.hidden, heads=max(1, shape.heads // tp),
                     kv_heads=max(1, shape.kv_heads // tp), head_dim=shape.head_dim,
                     intermediate=max(1, shape.intermediate // tp), vocab=max(1, shape.vocab // tp), tp=tp,
                     dtype_bytes=shape.dtype_bytes)


def dims_from_row(row: dict[str, Any]) -> ShardDims:
    """The shard described by a prefill/decode table row (dims are the whole model's, ``tp`` the split)."""
    tp = int(row["tp"])
    return ShardDims(shape=row["shape"], hidden=row["hidden"], heads=max(1, row["heads"] // tp),
                     kv_heads=max(1, row["kv_heads"] // tp), head_dim=row["head_dim"],
                     intermediate=max(1, row["intermediate"] // tp), vocab=max(1, row["vocab"] // tp), tp=tp)


def full_dims_row(shape: ModelShape, tp: int) -> dict[str, Any]:
    """Shape columns for a table row: the whole model's dims plus the TP degree of the shard."""
    return {"shape": shape.name, "hidden": shape.hidden, "heads": shape.heads, "kv_heads": shape.kv_heads,
            "head_dim": shape.head_dim, "intermediate": shape.intermediate, "vocab": shape.vocab, "tp": tp}


def llama_tensor_bytes(shape: ModelShape, layers: int, tp: int = 1) -> list[int]:
    """Byte sizes of the weight tensors of ``layers`` layers plus embedding, final norm and LM head."""
    s = shard_dims(shape, tp)
    h, d, b = s.hidden, s.head_dim, s.dtype_bytes
    per_layer = [h * s.heads * d, h * s.kv_heads * d, h * s.kv_heads * d, s.heads * d * h,
                 h * s.intermediate, h * s.intermediate, s.intermediate * h, h, h]
    out = [s.vocab * h * b]
    for _ in range(layers):
        out += [n * b for n in per_layer]
    out += [h * b, s.vocab * h * b]
    return out
