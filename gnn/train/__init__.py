"""Training, calibration, the promotion gate and evaluation against the baselines (one world or several)."""

