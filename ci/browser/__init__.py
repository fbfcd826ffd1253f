"""Browser checks: every Explore widget and the HTML report, in headless Chromium (CI artefacts).

``make browser-test`` (``.ci/run`` calls it after ``make test``) runs ``python -m ci.browser``
with the browser venv (playwright driving the system ``/usr/bin/chromium``). One job a module:
``actions`` (the table's vocabulary and its validation), ``interactions`` (THE table: one entry
per notebook with an Explore section), ``notebooks`` (which notebooks have one; the interactive
copy the browser runs), ``pages`` (what a static page links and shows, and which local targets
exist), ``lab`` (JupyterLab and a static HTTP server), ``driver`` (the Playwright part) and
``__main__`` (the command line). The pure modules are tested in ``tests/test_browser_check.py``.
"""
