"""Benchmarks: ``python -m bench [SCENARIO ...] [--quick]``; results printed and written to bench/results/."""
