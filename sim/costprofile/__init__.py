"""Calibration profiles as the simulator reads them: the profile format (:mod:`.profile`), the fits that
turn its tables into cost curves (:mod:`.fit`, :mod:`.curves`, :mod:`.compute`, :mod:`.shapes`,
:mod:`.assumptions`) and the shipped profiles (:mod:`.shipped`). :class:`warmsim.sim.costmodel.ProfileCostModel`
charges the simulator's costs from a fitted profile; calibrate/ measures and writes profiles.
Torch-free (numpy and scipy only)."""
