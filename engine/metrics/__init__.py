"""Evaluation metrics for accuracy predictors (numpy / scipy / sklearn; no torch)."""

from engine.metrics.ranking import (
    METRIC_KEYS,
    PERCENT_TO_FRACTION,
    all_metrics,
    kendall_tau,
    mae,
    ndcg_at_k,
    pairwise_kt,
    precision_at_k,
    regret_at_1,
    srcc,
    top_k_overlap,
)

__all__ = [
    "METRIC_KEYS", "PERCENT_TO_FRACTION", "all_metrics", "kendall_tau", "mae", "ndcg_at_k", "pairwise_kt",
    "precision_at_k", "regret_at_1", "srcc", "top_k_overlap",
]
