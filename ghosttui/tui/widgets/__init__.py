"""Widgets of the labelling app, one per module."""
