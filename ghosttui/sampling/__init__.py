"""Choosing what to label next: grid, boundary midpoints, uncertainty, random, holdout."""
