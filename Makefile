# Two entry points (README): `make demo` and `make test`. Both create .venv with the pinned dependencies first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo test lint dry-run bench clean-demo

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v java >/dev/null || { echo "java not found: install a Java runtime (e.g. openjdk-17-jre-headless) for the official METEOR jar"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The whole DAG on the offline demo config (2 CPU cores): synthetic data, tiny GPT-2 and BART, every artifact of
# the paper at tiny scale -> demo/reports/ (tables, figures, index.md) and demo/reports/report.html.
demo: setup
	snakemake --configfile config/demo.yaml --cores 2
	snakemake --configfile config/demo.yaml --report demo/reports/report.html
	@cat demo/reports/index.md

test: setup
	pytest -q

lint: setup
	ruff check .
	ruff format --check .
	snakefmt --check Snakefile workflow/rules
	snakemake --lint --configfile config/demo.yaml
	snakemake --lint

# Benchmarks as ratios against a baseline in the same process -> reports/bench.md (nothing asserts a speed).
bench: setup
	cd bench && python run_all.py

# Paper-scale plan without running anything (locally and through the SLURM profile).
dry-run: setup
	prefixtune plan --configfile config/config.yaml --forecast
	snakemake -n --quiet rules
	snakemake -n --quiet rules --profile slurm

clean-demo:
	rm -rf demo/
