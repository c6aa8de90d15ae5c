"""Domain services: the logic both the bridge and the API call."""
