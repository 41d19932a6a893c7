"""Model shapes and the sizes derived from them.

Weight bytes and KV-cache bytes per token are computed from the transformer shape, never typed in,
so a catalog entry is checkable against the published parameter count.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

MIB = 1 << 20
#: GPU memory is accounted in chunks of this size (CUDA VMM's 2 MiB granularity).
CHUNK_BYTES = 2 * MIB


def align_up(nbytes: int, granule: int = CHUNK_BYTES) -> int:
    """Round ``nbytes`` up to a multiple of ``granule``."""
    return -(-int(nbytes) // granule) * granule


@dataclass(frozen=True)
class ModelShape:
    """A Llama-style decoder-only transformer (untied embeddings, gated MLP, RMSNorm)."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    dtype_bytes: int = 2
    max_model_len: int = 2048

    @cached_property
    def params(self) -> int:
        """Parameter count: embeddings + LM head + per-layer attention, MLP and two norms + final norm."""
        h = self.hidden
        attn = h * self.heads * self.head_dim + 2 * h * self.kv_heads * self.head_dim
        attn += self.heads * self.head_dim * h
        mlp = 3 * h * self.intermediate
        per_layer = attn + mlp + 2 * h
        return 2 * self.vocab * h + self.layers * per_layer + h

    @cached_property
    def weight_bytes(self) -> int:
        """Bytes of all weights at ``dtype_bytes`` per parameter."""
        return self.params * self.dtype_bytes

    @cached_property
    def kv_bytes_per_token(self) -> int:
        """Bytes of K and V for one token across all layers (whole model, all TP shards)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    @cached_property
    def flops_per_token(self) -> int:
        """Approximate forward FLOPs per token for the dense part (2 x params)."""
        return 2 * self.params


@dataclass(frozen=True)
class ServedModel:
    """One model as the cluster serves it: a name users route to, a shape, a TP degree.

    Two served models may share a shape (e.g. two fine-tunes of Llama-2-7B are two models).
    """

    name: str
    shape: ModelShape
    tp: int = 1

    def at_tp(self, tp: int) -> ServedModel:
        """This model served at tensor-parallel degree ``tp`` (itself when that is its own)."""
        return self if tp == self.tp else ServedModel(self.name, self.shape, tp)

    @cached_property
    def weight_bytes(self) -> int:
        return self.shape.weight_bytes

    @cached_property
    def shard_bytes(self) -> int:
        """Bytes of weights each GPU of the TP group holds, aligned to the 2 MiB chunk."""
        return align_up(-(-self.shape.weight_bytes // self.tp))

    @cached_property
    def kv_bytes_per_token_per_gpu(self) -> int:
        return -(-self.shape.kv_bytes_per_token // self.tp)
