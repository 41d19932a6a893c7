"""warmsim's discrete-event cluster model (SimPy): nodes, GPUs, memory, links, instances, engines.

Nothing here imports torch; the simulator runs on any CPU.
"""
