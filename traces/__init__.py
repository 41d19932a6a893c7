"""Real traces in, multi-model workloads out: loaders, validation, workload builders, describe/plot."""
