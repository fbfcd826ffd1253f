"""Study modules: what the notebooks compute, so that a notebook only orchestrates.

A notebook's topic module runs the study (``run_*`` → DataFrame, from cached rows) and draws it
(``plot_*`` → Figure); its ``*_study`` module holds what the notebook did between those calls and
its ``*_metrics`` dict; its ``*_claims`` module judges the paper's claims
(:class:`~prototokens.studies.claims.Claim` records). Shared pieces have modules of their own.
``tests/test_house_rules.py`` checks that every module is listed here.

======================  ===========================================================================
module                  offers
======================  ===========================================================================
``setup``               01: environment checks as rows, the sanity forward pass, 01's metrics
``optimization``        02: arrangements table, result columns, curves, recipe comparison, metrics
``optimization_plots``  02 (and 04, the explorer): Fig. 2 schematic, curves, reconstruction views
``optimizers``          bench/optimizer_study.py: cost per solved text of each optimiser
``warm_starts``         bench/warm_start_study.py: the progressive search's cost against fresh runs
``capacity``            03 and 05: grid and progressive capacity search, per-text capacities
``capacity_study``      03: the searches per model (grid, shared m, AR), comparison, 03's metrics
``capacity_tables``     03: Table 3, grid against progressive
``capacity_plots``      03: Fig. 1, Fig. 3, accuracy against prefix length
``capacity_claims``     03: the capacity claims
``arrangement_study``   04: Tables 1 and 2, the Eq. 1 variants, their plots, 04's metrics
``arrangement_claims``  04: the arrangement and sharing claims
``families``            05 (and 03's further models): the model sweep, family table, plot, metrics
``family_claims``       05: the size and family claims
``geometry``            06: distances, pairs, locality tests, text-similarity control, their plots
``bezier``              06: curves, batched control-point training, connectivity, its plot
``readout``             06: read-out probe, decoding of arbitrary points
``geometry_study``      06: the rows and vectors each study takes, 06's metrics
``geometry_claims``     06: the geometry claims
``decode_timing``       07 and bench/: the timer, random ids, one-pass and autoregressive decoders
``bounds``              07: device peaks and the physical bounds of both decoders
``throughput``          07: run_throughput, speed-ups, Table 4 from rows, Fig. 4
``throughput_study``    07: errors, Table 4 or its note, headline speed-ups, 07's metrics
``throughput_claims``   07: the 279x claim at each model's capacity
``claims``              every notebook: the Claim record, verdict words, 02's one-pass claim
``measures``            derived measurements several tables report (utilisation, s per text)
``summaries``           aggregations shared by several notebooks (recipe ranking, mean ± std)
``paper_tables``        the paper's published numbers, shown beside ours (never computed on)
``plotting``            helpers shared by the ``plot_*`` functions (legends, empty panels)
======================  ===========================================================================
"""
