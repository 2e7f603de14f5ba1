"""The terminal app: a thin Textual layer over ghosttui.loop.controller and the session."""
