"""A few Llama-shaped layers of one TP shard in plain torch, for prefill and decode timings.

Random non-zero bf16 weights (never zeros: kernels can be faster on them); attention through
``scaled_dot_product_attention``; RMSNorm, gated SiLU MLP. Rotary embeddings are left out (an
elementwise op, small next to the GEMMs and attention). Imports torch: harness-only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from warmsim.sim.costprofile.shapes import ShardDims

#: Scale of the random weights (keeps activations finite through a few layers).
WEIGHT_STD = 0.02
#: RMSNorm epsilon (Llama's).
RMS_EPS = 1e-5


def _rand(*shape: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    return (torch.randn(*shape, device=device, dtype=dtype) * WEIGHT_STD).contiguous()


def _rms(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    var = x.float().pow(2).mean(-1, keepdim=True)
    return (x.float() * torch.rsqrt(var + RMS_EPS)).to(x.dtype) * w


class LayerStack:
    """``layers`` layers of one shard, plus the final norm and the LM-head shard."""

    def __init__(self, dims: ShardDims, layers: int, device: str = "cuda", dtype: torch.dtype = torch.bfloat16):
        self.d, self.device, self.dtype = dims, device, dtype
        h, q, kv, i = dims.hidden, dims.heads * dims.head_dim, dims.kv_heads * dims.head_dim, dims.intermediate
        self.layers = [dict(norm1=torch.ones(h, device=device, dtype=dtype), wq=_rand(q, h, device=device, dtype=dtype),
                            wk=_rand(kv, h, device=device, dtype=dtype), wv=_rand(kv, h, device=device, dtype=dtype),
                            wo=_rand(h, q, device=device, dtype=dtype), norm2=torch.ones(h, device=device, dtype=dtype),
                            wg=_rand(i, h, device=device, dtype=dtype), wu=_rand(i, h, device=device, dtype=dtype),
                            wd=_rand(h, i, device=device, dtype=dtype)) for _ in range(layers)]
        self.final_norm = torch.ones(h, device=device, dtype=dtype)
        self.lm_head = _rand(dims.vocab, h, device=device, dtype=dtype)

    def _attn(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
        rep = self.d.heads // self.d.kv_heads
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    def _mlp(self, x: torch.Tensor, p: dict) -> torch.Tensor:
        hn = _rms(x, p["norm2"])
        return x + (F.silu(hn @ p["wg"].T) * (hn @ p["wu"].T)) @ p["wd"].T

    @torch.inference_mode()
    def prefill(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [batch, tokens, hidden]; causal self-attention over the prompt."""
        b, n, _ = x.shape
        d = self.d
        for p in self.layers:
            hn = _rms(x, p["norm1"])
            q = (hn @ p["wq"].T).view(b, n, d.heads, d.head_dim).transpose(1, 2)
            k = (hn @ p["wk"].T).view(b, n, d.kv_heads, d.head_dim).transpose(1, 2)
            v = (hn @ p["wv"].T).view(b, n, d.kv_heads, d.head_dim).transpose(1, 2)
            o = self._attn(q, k, v, causal=True).transpose(1, 2).reshape(b, n, d.heads * d.head_dim)
            x = self._mlp(x + o @ p["wo"].T, p)
        return x

    def kv_cache(self, batch: int, context: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Random K/V caches with room for one new token: [batch, kv_heads, context + 1, head_dim]."""
        d = self.d
        return [(_rand(batch, d.kv_heads, context + 1, d.head_dim, device=self.device, dtype=self.dtype),
                 _rand(batch, d.kv_heads, context + 1, d.head_dim, device=self.device, dtype=self.dtype))
                for _ in self.layers]

    @torch.inference_mode()
    def decode(self, x: torch.Tensor, cache: list[tuple[torch.Tensor, torch.Tensor]], context: int) -> torch.Tensor:
        """One decode step: ``x`` [batch, 1, hidden] attends to ``context`` cached tokens plus itself."""
        b = x.shape[0]
        d = self.d
        for p, (kc, vc) in zip(self.layers, cache):
            hn = _rms(x, p["norm1"])
            q = (hn @ p["wq"].T).view(b, 1, d.heads, d.head_dim).transpose(1, 2)
            kc[:, :, context] = (hn @ p["wk"].T).view(b, d.kv_heads, d.head_dim)
            vc[:, :, context] = (hn @ p["wv"].T).view(b, d.kv_heads, d.head_dim)
            o = self._attn(q, kc, vc, causal=False).transpose(1, 2).reshape(b, 1, d.heads * d.head_dim)
            x = self._mlp(x + o @ p["wo"].T, p)
        return x

    @torch.inference_mode()
    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Final norm + LM head on [batch, hidden], then greedy sampling."""
        return (_rms(x, self.final_norm) @ self.lm_head.T).argmax(-1)
