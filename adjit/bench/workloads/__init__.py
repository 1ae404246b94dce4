"""Workload modules: each defines `workload()` returning an adjit.bench.Workload.

Name a module `wN_short_name.py`; `adjit bench --list` shows them, `adjit bench WN` runs one.
"""
