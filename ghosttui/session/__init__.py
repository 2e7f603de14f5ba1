"""Sessions: settings on disk, crash-safe labels in SQLite, a lock, checkpoints."""
