# The Latent Attention Book: `make book` builds the site, `make test` runs the tests.
# Both install what they need on a fresh clone: a virtual environment in .venv
# (rebuilt when pyproject.toml changes), the vendored JavaScript in node_modules
# (`npm ci`, from package-lock.json) and, for the browser test, Debian's Chromium.
#
#   make book                    # execute the chapters (profile "auto") and build _build/html
#   make book PROFILE=full       # the paper's settings, for a GPU runner
#   make book BOOK_ARGS="--only 01_method"
#   make test PYTEST_ARGS="-x tests/site"
#   make mutation                # mutation score and branch coverage of the method modules
#   make mutation MUTATION_ARGS="--modules noise loop"

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto
BOOK_ARGS ?=
PYTEST_ARGS ?=
MUTATION_ARGS ?=
# A bare torch==2.13.0 may resolve to a local "+cpu" wheel, with which
# torchvision 0.28.0 fails to import ("operator torchvision::nms does not exist").
TORCH_SPEC ?= "torch==2.13.0,!=2.13.0+cpu" "torchvision==0.28.0"
CHROMIUM ?= /usr/bin/chromium

# Offline copies of the datasets sit beside the clone on the CI machines: use them unless
# LANLIB_DATA_MIRROR is set already. Elsewhere the loaders download the originals.
ifeq ($(origin LANLIB_DATA_MIRROR),undefined)
ifneq ($(wildcard ../shared/datasets),)
export LANLIB_DATA_MIRROR := $(abspath ../shared/datasets)
endif
endif

PY_STAMP := $(VENV)/.installed
JS_STAMP := node_modules/.installed

.PHONY: book test mutation install js chromium lint clean

book: install js
	$(PY) tools/build_book.py --profile "$(PROFILE)" $(BOOK_ARGS)

test: install js chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# mutmut on lanlib's method modules, with the unit tests that reach each mutated function,
# then their branch coverage (tools/mutation.py). Not part of `make test`: it takes minutes.
mutation: install
	$(PY) tools/mutation.py $(MUTATION_ARGS)

install: $(PY_STAMP)

$(PY_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar off $(TORCH_SPEC)
	$(PY) -m pip install --progress-bar off -e ".[book,test]"
	touch $@

js: $(JS_STAMP)

$(JS_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install -y nodejs npm"; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# The browser test (tests/site) drives Debian's Chromium. Installed here when
# running as root; otherwise the test is skipped (failed under CI) and says how.
chromium:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "Chromium is missing and this is not root: run 'sudo apt-get install chromium'"; \
		echo "(or set LANLIB_CHROMIUM); the browser test will be skipped"; \
	fi

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf _build
