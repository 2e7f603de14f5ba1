"""Screens of the labelling app."""
