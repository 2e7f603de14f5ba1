"""Pictures of patterns and maps: terminal cells (half-block, ASCII) and PNG files.

No Textual here: these build rich ``Segment`` lines that the CLI prints and the
TUI's widgets draw.
"""
