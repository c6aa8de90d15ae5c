"""The bridge worker: consumes client requests from outboxes, authorizes, persists, fans out events."""
