"""GENNAPE Studio's engine: the pipeline behind the app, importable without Streamlit.

``graphs`` (computation graphs and importers) -> ``families`` (search spaces) -> ``data``
(labelled datasets with provenance) -> ``model`` (encoder, contrastive loss, fuzzy C-means,
heads, ensemble, predictor, checkpoints) -> ``train`` (pretraining, fine-tuning) -> ``metrics``
-> ``search``; ``evaluate`` holds the protocols and checks, ``report`` the HTML report,
``studio`` the app's data layer, ``cli`` the ``python -m engine`` commands and ``bench`` the
benchmarks.
"""
