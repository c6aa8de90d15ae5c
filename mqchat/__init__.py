"""The `mqchat` command: composition root that starts the store, broker, bridge and API."""
