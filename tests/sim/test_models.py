"""Model sizes are derived from shapes and match published byte counts."""

import pytest

from warmsim.sim.catalog import get_shape, known_models
from warmsim.sim.errors import UserError
from warmsim.sim.models import ServedModel

# Byte counts of the WarmServe artifact's models (fp16).
ARTIFACT_BYTES = {"llama-2-7b": 13_476_831_232, "llama-2-13b": 26_032_558_080, "llama-2-70b": 137_961_209_856}


@pytest.mark.parametrize("name", sorted(ARTIFACT_BYTES))
def test_weight_bytes_match_the_artifact(name):
    # 7B matches exactly; 13B and 70B differ by < 0.01% (the artifact's counts include a few
    # non-parameter buffers we do not model).
    assert get_shape(name).weight_bytes == pytest.approx(ARTIFACT_BYTES[name], rel=1e-4)
    assert get_shape("llama-2-7b").weight_bytes == ARTIFACT_BYTES["llama-2-7b"]


@pytest.mark.parametrize("name,params_b", [("llama-3-8b", 8.03), ("llama-3-70b", 70.55)])
def test_llama3_parameter_counts(name, params_b):
    assert get_shape(name).params / 1e9 == pytest.approx(params_b, abs=0.01)


def test_kv_bytes_per_token_from_shape():
    # Llama-2-7B: 2 (K,V) x 32 layers x 32 heads x 128 dims x 2 bytes = 512 KiB per token.
    assert get_shape("llama-2-7b").kv_bytes_per_token == 2 * 32 * 32 * 128 * 2
    # GQA: Llama-2-70B has 8 KV heads.
    assert get_shape("llama-2-70b").kv_bytes_per_token == 2 * 80 * 8 * 128 * 2


def test_tp_shards_are_chunk_aligned():
    m = ServedModel("x", get_shape("llama-2-70b"), 4)
    assert m.shard_bytes % (2 << 20) == 0 and m.shard_bytes * 4 >= m.weight_bytes


def test_unknown_model_names_the_known_ones():
    with pytest.raises(UserError, match="unknown model 'gpt-9'.*llama-2-7b"):
        get_shape("gpt-9")
    assert "llama-3-70b" in known_models()
