"""UI helpers of GENNAPE Studio: state keys, cached engine calls, figures, graph view, progress."""
