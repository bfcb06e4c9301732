"""Benchmarks for dbpoollint.

Run ``python -m benchmarks --help`` from the repository root. The benchmark runs the real CLI as a
subprocess over the running interpreter's standard library and over a generated corpus with a known
number of DPL101 mistakes, cold and warm, and reports files/s, lines/s and peak memory.
"""
