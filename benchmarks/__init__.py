"""Benchmarks: each ``bench_*.py`` module compares learnprivacy with a floor in the same run."""
