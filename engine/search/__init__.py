"""Architecture search with the predictor (paper: "Applying GENNAPE to NAS", Table 7).

* :mod:`~engine.search.interpret` — CG -> ``nn.Module`` (feasibility by construction);
* :mod:`~engine.search.mutate` — CG mutation operators;
* :mod:`~engine.search.spaces` — candidate spaces: CGs, family specs (NB-201 / NB-101 / HiAML), pools;
* :mod:`~engine.search.evolution` — regularized evolution under a FLOPs target, Pareto front;
* :mod:`~engine.search.runner` — ``run_search(start, predictor, config, callback)``, export;
* :mod:`~engine.search.diff` — added / removed / changed nodes between two CGs;
* :mod:`~engine.search.verify` — verification on real NB-201 / NB-101 labels vs random search.

Submodules are imported explicitly (importing this package loads nothing heavy).
"""
