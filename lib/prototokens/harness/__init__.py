"""The notebook harness: the papermill runner (``runner``: run_notebook, run_all, the CLI; built on
``params``: discovery and parameter checks, ``process``: the subprocess, timeouts and dead kernels,
``provenance``: run records and manifests), the per-notebook session, artefact writers, the HTML
report (with ``references``: the committed reference runs it shows beside a run) and the widget
explorer (the figures live in the studies)."""
