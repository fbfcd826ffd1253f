"""Browser checks: every Explore widget and the HTML report, in headless Chromium (CI artefacts).

``make browser-test`` (called by ``.ci/run`` after ``make test``) runs ``python -m ci.browser``
with the browser venv (``.venv-browser``, playwright driving the system ``/usr/bin/chromium``).

Modules, one job each:

- :mod:`ci.browser.actions`: the vocabulary of the interaction tables (``Click``, ``Set``,
  ``ExpectText``...) and their validation. Pure Python.
- :mod:`ci.browser.interactions`: THE table, one entry per notebook with an Explore section.
  A new notebook joins the check by adding its entry there (format in ``ci/README.md``).
- :mod:`ci.browser.notebooks`: which notebooks have an Explore section; the fast, interactive
  copy of a notebook that the browser runs. Pure Python.
- :mod:`ci.browser.pages`: what a static HTML page links, shows and tabulates, and which of its
  local links and images resolve. Pure Python.
- :mod:`ci.browser.lab`: a JupyterLab server on a free port with a token, shut down with its
  kernels; a tiny HTTP server for the report.
- :mod:`ci.browser.driver`: the Playwright part (Run All, operate widgets, read errors,
  screenshots) and the report check in the browser.
- ``python -m ci.browser``: the command line.

The pure modules are unit-tested in ``tests/test_browser_check.py`` without a browser.
"""
