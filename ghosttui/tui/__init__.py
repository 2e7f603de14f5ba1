"""The terminal app: a thin Textual layer over ghosttui.labelling and the session."""
