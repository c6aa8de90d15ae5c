"""Shared domain code for mqchat: settings, documents, topics, payloads, security, services.

The broker, the bridge and the API import only this package, never each other.
"""

__version__ = "0.1.0"
