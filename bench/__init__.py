"""Benchmarks of issue 5: each compares the pipeline with a baseline measured in the same run.

Run one with ``python -m bench.NAME`` from the project root (``--help`` lists its options,
``--smoke`` runs it at a tiny size). Each prints a table and writes its figures to
``bench/results/NAME.json``. See ``bench/README.md``.
"""
