"""The CNN: architecture, training, prediction, checkpoints. No UI imports."""
