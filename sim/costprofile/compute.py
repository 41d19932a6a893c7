"""Prefill and decode costs of a whole served model from per-layer shard fits.

A TP-``t`` model is charged its shard's per-layer cost times the layer count, the LM head once,
and a communication term: two all-reduces per layer (after attention and after the MLP) of
``tokens * hidden * dtype_bytes`` bytes each, modelled as a ring all-reduce over NVLink::

    t_allreduce(n_bytes) = allreduce_latency_s + 2 * (t - 1) / t * n_bytes / nvlink_bytes_per_s

A shard that the profile did not measure is scaled from the nearest measured shard (by per-layer
parameter count): prefill and the per-sequence decode term by FLOPs (parameter ratio), the decode
base by weight bytes, the context term by KV bytes per token, the head by its bytes/FLOPs; a
warning names both shards.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from warmsim.sim.cost import DecodeCoeffs
from warmsim.sim.costprofile.assumptions import Assumptions
from warmsim.sim.costprofile.fit import ComputeData
from warmsim.sim.costprofile.shapes import ShardDims, shard_dims
from warmsim.sim.errors import UserError
from warmsim.sim.models import ModelShape


class ScalingWarning(UserWarning):
    """A model's costs were scaled from another measured shape."""


@dataclass(frozen=True)
class ModelCompute:
    """Compute costs of one model shape at one TP degree."""

    dims: ShardDims
    layers: int
    source: ComputeData
    flop_scale: float  # target per-layer FLOPs / measured per-layer FLOPs (same tokens)
    byte_scale: float  # target per-layer weight bytes / measured
    kv_scale: float  # target KV bytes per token per layer / measured
    head_byte_scale: float
    head_flop_scale: float
    ar_latency_s: float  # per all-reduce (0 at TP 1)
    ar_s_per_token: float  # per all-reduce per token (0 at TP 1)
    max_seq_len: int

    @property
    def scaled(self) -> bool:
        return self.source.dims.key()[1:6] != self.dims.key()[1:6]

    def _layer_prefill_s(self, per_seq: float, seqs: int) -> float:
        curves = self.source.prefill
        batches = sorted(curves)
        if seqs <= batches[0]:
            return curves[batches[0]](per_seq)
        if seqs >= batches[-1]:
            # same total tokens spread over the largest measured batch (attention slightly over-counted)
            return curves[batches[-1]](per_seq * seqs / batches[-1])
        hi = next(b for b in batches if b >= seqs)
        lo = max(b for b in batches if b <= seqs)
        if hi == lo:
            return curves[lo](per_seq)
        w = (seqs - lo) / (hi - lo)
        return (1 - w) * curves[lo](per_seq) + w * curves[hi](per_seq)

    def head_s(self, batch: int) -> float:
        h = self.source.head
        if h is None:
            return 0.0
        return h.intercept * self.head_byte_scale + h.coef[0] * batch * self.head_flop_scale

    def prefill_s(self, tokens: int, seqs: int) -> float:
        """One prefill step over ``seqs`` sequences totalling ``tokens`` tokens."""
        seqs = max(1, int(seqs))
        tokens = max(1, int(tokens))
        layer = self._layer_prefill_s(tokens / seqs, seqs) * self.flop_scale
        comm = 2 * (self.ar_latency_s + self.ar_s_per_token * tokens)
        return self.layers * (layer + comm) + self.head_s(seqs)

    def decode_coeffs(self) -> DecodeCoeffs:
        """The linear decode-step model of the whole model (layers + head + all-reduces)."""
        d = self.source.decode
        if d is None:
            raise UserError(f"profile has no decode measurements for {self.source.dims.shape}")
        base = self.layers * (d.intercept * self.byte_scale + 2 * self.ar_latency_s)
        per_seq = self.layers * (d.coef[0] * self.flop_scale + 2 * self.ar_s_per_token)
        per_ctx = self.layers * d.coef[1] * self.kv_scale
        h = self.source.head
        if h is not None:
            base += h.intercept * self.head_byte_scale
            per_seq += h.coef[0] * self.head_flop_scale
        return DecodeCoeffs(base, per_seq, per_ctx)


def _nearest(target: ShardDims, candidates: list[ComputeData]) -> ComputeData:
    exact = [c for c in candidates if c.dims.key()[1:6] == target.key()[1:6]]
    if exact:
        return min(exact, key=lambda c: (c.dims.vocab != target.vocab, c.dims.shape != target.shape))
    return min(candidates, key=lambda c: abs(math.log(c.dims.layer_params / target.layer_params)))


def model_compute(shape: ModelShape, tp: int, data: dict[tuple, ComputeData], a: Assumptions) -> ModelCompute:
    """Build the compute costs of ``shape`` at ``tp`` from the profile's measured shards."""
    cands = [c for c in data.values() if c.prefill and c.decode is not None]
    if not cands:
        raise UserError("calibration profile has no prefill/decode measurements (sections failed or missing)")
    dims = shard_dims(shape, tp)
    src = _nearest(dims, cands)
    m = src.dims
    if tp > 1:
        ar_lat = a.allreduce_latency_s
        ar_tok = 2 * (tp - 1) / tp * shape.hidden * shape.dtype_bytes / a.nvlink_bytes_per_s
    else:
        ar_lat = ar_tok = 0.0
    mc = ModelCompute(
        dims=dims, layers=shape.layers, source=src,
        flop_scale=dims.layer_params / m.layer_params, byte_scale=dims.layer_bytes / m.layer_bytes,
        kv_scale=dims.kv_bytes_per_token_layer / m.kv_bytes_per_token_layer,
        head_byte_scale=dims.head_bytes / m.head_bytes,
        head_flop_scale=(dims.vocab * dims.hidden) / (m.vocab * m.hidden),
        ar_latency_s=ar_lat, ar_s_per_token=ar_tok, max_seq_len=shape.max_model_len)
    if mc.scaled:
        warnings.warn(f"{shape.name} at tp={tp} is not in the profile; scaled from the profile's shard "
                      f"{m.shape}/tp{m.tp} by FLOPs/bytes", ScalingWarning, stacklevel=3)
    return mc
