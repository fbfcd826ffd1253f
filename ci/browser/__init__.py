"""The browser check (`make browser-test`, `python -m ci.browser`): see ci/README.md."""
