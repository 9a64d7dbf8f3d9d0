"""Training-loop pieces (epoch functions, schedule, losses, early stopping, calibration, DDP, logs, plots)."""
