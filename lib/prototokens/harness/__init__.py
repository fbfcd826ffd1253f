"""The notebook harness: the papermill runner, the per-notebook session, artefact writers, the
HTML report, plotting helpers and the widget explorer."""
