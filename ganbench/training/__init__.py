"""Training one run: the loop, its budget and clock, logging windows, speed and training options, checkpoints, sample pictures, and the measurements of the loop itself (syncs, cost, calibration)."""
