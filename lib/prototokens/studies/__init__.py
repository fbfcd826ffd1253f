"""Study modules, one per notebook topic: each offers ``run_*`` (→ DataFrame, from cached rows) and
``plot_*`` (→ matplotlib Figure), so that a notebook only orchestrates.

===============  =====================================================================
module           notebook
===============  =====================================================================
``setup``        01_setup: environment table and the sanity forward pass
``optimization`` 02_optimization: result columns, curves, the recipe comparison
``summaries``    aggregations shared by several notebooks (recipe ranking, mean ± std)
``arrangements`` 04_arrangements: Tables 1 and 2
``capacity``     03_metrics (and 05): grid and progressive capacity search; with
                 ``capacity_tables`` (Table 3, claims) and ``capacity_plots`` (Figs 1, 3)
``geometry``     06_bezier_geometry: locality and Bezier connectivity
``timing``       07_throughput: one forward pass against autoregressive decoding
===============  =====================================================================
"""
