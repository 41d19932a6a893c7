"""The GPU calibration harness: sweeps (:mod:`.plan`), a device backend interface (:mod:`.device`),
the sections that turn measurements into table rows (:mod:`.sections`) and the runner that writes a
profile directory section by section (:mod:`.runner`).

Only :mod:`.torch_device`, :mod:`.probes` and :mod:`.validate` import torch, and only when used.
"""
