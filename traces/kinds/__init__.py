"""One module per workload kind; :mod:`warmsim.traces.builders` dispatches on ``cfg["kind"]``."""
