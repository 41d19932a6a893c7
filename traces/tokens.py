"""Token lengths for traces that have none (count and rate series): draw (prompt, output) pairs.

Pairs are drawn uniformly with replacement from the rows of a per-request table, so the joint
distribution of prompt and output length is kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sample_pairs(table: pd.DataFrame, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` (prompt_tokens, output_tokens) pairs uniformly, with replacement, from ``table``."""
    idx = rng.integers(0, len(table), size=n)
    prompt = table["prompt_tokens"].to_numpy()[idx]
    output = table["output_tokens"].to_numpy()[idx]
    return prompt.astype(np.int64), output.astype(np.int64)
