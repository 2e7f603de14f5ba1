"""ghosttui: active-learning labelling of ferroelectric domains in 4D-STEM scans."""

__version__ = "0.1.0"
