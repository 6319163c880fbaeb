"""Benchmarks: ``python -m engine.bench <section>|all``.

Each section is a module ``engine/bench/<section>.py`` with ``run() -> dict[str, float]`` that
prints human-readable numbers and returns them.
"""
