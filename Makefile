# Two entry points for a fresh machine: `make run` (the app on the offline default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test test-fast bench grid-smoke grid-default clean-cache

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m streamlit run serve.py --server.port $(PORT) --server.headless true

test: $(VENV)/.installed
	$(PY) -m pytest -q

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow and not browser"

bench: $(VENV)/.installed
	$(PY) -m jobs.bench

grid-smoke: $(VENV)/.installed
	$(PY) -m jobs.grid jobs/configs/smoke.toml --results results/smoke

grid-default: $(VENV)/.installed
	$(PY) -m jobs.grid jobs/configs/default.toml --results jobs/results/default

clean-cache:
	rm -rf .cache/embeddings
