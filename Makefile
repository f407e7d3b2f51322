# Two entry points for a fresh machine: `make run` (the app on the offline default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test test-fast bench grid-smoke grid-default clean-cache

# Python 3.11 or newer (the code reads TOML with tomllib, new in 3.11): on an older one the first job or test
# stopped on "No module named 'tomllib'", which does not say what to do.
$(VENV)/.installed: requirements.txt
	@found=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])') && case "$$found" in \
	  3.1[1-9]|3.[2-9][0-9]) ;; \
	  *) echo "needs Python 3.11 or newer; $(PYTHON) is Python $$found: run PYTHON=python3.11 make (or newer)" >&2; \
	     exit 1;; esac
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

# The embedding cache the jobs use (core.embed.default_cache_dir): $IIMM_CACHE (spaces around it stripped, a leading
# ~ the home folder, as there), else .cache/embeddings. Says its size, then removes its entries (*.npz, the
# temporaries of killed writes included) and nothing else.
clean-cache:
	@dir="$${IIMM_CACHE-}"; dir="$${dir#"$${dir%%[![:space:]]*}"}"; dir="$${dir%"$${dir##*[![:space:]]}"}"; \
	dir="$${dir:-.cache/embeddings}"; \
	case "$$dir" in "~"|"~/"*) dir="$$HOME$${dir#"~"}";; esac; \
	if [ -d "$$dir" ]; then du -sh "$$dir"; find "$$dir" -maxdepth 1 -type f -name '*.npz' -delete; \
		echo "emptied the embedding cache $$dir"; else echo "no embedding cache at $$dir"; fi
