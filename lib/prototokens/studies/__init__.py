"""Study modules, one per notebook topic: each offers ``run_*`` (→ DataFrame, from cached rows) and
``plot_*`` (→ matplotlib Figure), so that a notebook only orchestrates.

===================  ========================================================================
module               notebook
===================  ========================================================================
``setup``            01_setup: environment table and the sanity forward pass
``optimization``     02_optimization: result columns, curves, the recipe comparison
``summaries``        aggregations shared by several notebooks (recipe ranking, mean ± std)
``arrangements``     04_arrangements: Tables 1 and 2
``capacity``         03_metrics (and 05): grid and progressive capacity search
``geometry``         06_bezier_geometry: distances, pairs, locality tests, text-similarity control
``bezier``           06_bezier_geometry: curves, batched control-point training, connectivity
``readout``          06_bezier_geometry: read-out probe, decoding of arbitrary points
``geometry_claims``  06_bezier_geometry: verdicts on the paper's geometry claims
``timing``           07_throughput: one forward pass against autoregressive decoding
===================  ========================================================================
"""
