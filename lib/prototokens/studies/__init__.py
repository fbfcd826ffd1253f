"""Study modules, one per notebook topic: each offers ``run_*`` (→ DataFrame, from cached rows) and
``plot_*`` (→ matplotlib Figure), so that a notebook only orchestrates.

===================  ========================================================================
module               notebook
===================  ========================================================================
``setup``            01_setup: environment table and the sanity forward pass
``optimization``     02_optimization: result columns, curves, the recipe comparison
``summaries``        aggregations shared by several notebooks (recipe ranking, mean ± std)
``capacity``         03_metrics (and 05): grid and progressive capacity search
``capacity_tables``  03_metrics: Table 3, grid against progressive, the claims' verdicts
``capacity_plots``   03_metrics: Fig. 1, Fig. 3, accuracy against prefix length
``arrangements``     04_arrangements: Tables 1 and 2
``families``         05_model_families: the model sweep, family table, claims
``paper_tables``     the paper's published numbers, shown beside ours (never computed on)
``geometry``         06_bezier_geometry: distances, pairs, locality tests, text-similarity control
``bezier``           06_bezier_geometry: curves, batched control-point training, connectivity
``readout``          06_bezier_geometry: read-out probe, decoding of arbitrary points
``geometry_claims``  06_bezier_geometry: verdicts on the paper's geometry claims
``timing``           07_throughput: the timing harness, one-pass and autoregressive decoders
``bounds``           07_throughput: device peaks and the physical bounds of both
``throughput``       07_throughput: run_throughput, speed-ups, Table 4 from rows, Fig. 4
``step_timing``      bench/: speed of the training step (eager, compiled) against a bare loop
===================  ========================================================================
"""
