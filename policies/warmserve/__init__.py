"""WarmServe's policies (warmserve.md sections 3-5): load prediction, evict-aware placement of
prewarmed replicas, activation, and proactive KV reservation; :mod:`.bundle` names the system and
its ablations are hydra configs in ``experiments/conf/system/warmserve*.yaml``. Every policy is a pure decision function of a snapshot (the predictors keep their
own observation history)."""

from warmsim.policies.warmserve.activation import WarmServeActivator, replicas_evicted_by
from warmsim.policies.warmserve.kv_reserve import KVReservePolicy, KVReserveStep
from warmsim.policies.warmserve.placement import EvictAwarePlacer, RoundRobinPlacer
from warmsim.policies.warmserve.predictor import (
                                          AccuracyReport,
                                          CorrectiveSeasonalPredictor,
                                          LastWindowPredictor,
                                          OraclePredictor,
                                          PredictionAccuracy,
)
from warmsim.policies.warmserve.scores import replica_demand, replica_scores

__all__ = [
    "AccuracyReport", "CorrectiveSeasonalPredictor", "EvictAwarePlacer", "KVReservePolicy", "KVReserveStep",
    "LastWindowPredictor", "OraclePredictor", "PredictionAccuracy", "RoundRobinPlacer",
    "WarmServeActivator", "replica_demand",
    "replica_scores", "replicas_evicted_by",
]
