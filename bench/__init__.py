"""Benchmarks of mqchat: `python -m bench --help`."""
