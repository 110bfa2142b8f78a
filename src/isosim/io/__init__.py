"""Files: atomic writes, checkpoints, run directories and result files."""
