# The two commands of the README. Each creates or refreshes .venv from pyproject.toml by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp names what .venv was installed from: pyproject.toml and uv.lock as they are once it is (uv may rewrite
# uv.lock), so that the next make finds it.
INSTALLED_FROM = $(PYTHON) -c "import hashlib, os; print(hashlib.sha256(b''.join(open(f, 'rb').read() for f in ('pyproject.toml', 'uv.lock') if os.path.exists(f))).hexdigest()[:16])"
STAMP  := $(VENV)/.installed-$(shell $(INSTALLED_FROM))

ARGS ?=

.PHONY: serve test bench venv clean

serve: $(STAMP)
	$(BIN)/ivh-mock serve --data-dir data $(ARGS)

# Tests run on three workers more than the machine has cores: about a third of a test's time is spent waiting on a
# subprocess or a socket, so spare workers keep every core busy (spec/DECISIONS.md D65). Tests sharing a module
# fixture stay on one worker (tests/conftest.py).
JOBS ?= $(shell $(PYTHON) -c "import os; print((os.cpu_count() or 1) + 3)")

# The suite starts about a hundred Python processes (servers, pytest runs, CLIs). They write and share bytecode
# caches (__pycache__, ignored by git) even where PYTHONDONTWRITEBYTECODE is set, so a module is compiled, and a test
# module's asserts rewritten, once per run rather than once per process (D65).
test: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(JOBS) --dist loadgroup $(ARGS)

# The benchmark's servers start as a user's would, from bytecode cached at their first start: its cold start is
# Python's default, not a compile of every module at every start.
bench: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m bench $(ARGS)

venv: $(STAMP)

# uv installs the virtualenv in a sixth of pip's time (D65), from uv.lock: `uv sync` takes the versions it lists
# without asking the package index about each (the index's answers were most of the 6 s `uv pip install` took, the
# sync 1.5 s); a uv.lock that pyproject.toml has outgrown is resolved again and rewritten first, as `uv lock` would.
# Where uv cannot be had or cannot reach an index (uv reads UV_INDEX_URL, not pip's configuration), pip installs
# it. Neither compiles every module of every dependency (--no-compile): Python compiles what is imported, once, when
# it is first imported. The virtualenv is made without a pip: $(PYTHON)'s own pip puts uv into it (`pip --python`,
# pip 22.3 and later), and uv installs a pip with the rest (pyproject.toml's `dev` group); making the virtualenv's
# pip first, only to install uv, took half of the 9 s uv then had in hand. A $(PYTHON) without a pip (or an older
# one) makes the virtualenv's own pip first, as before.
$(STAMP):
	@$(PYTHON) -c "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 'ivh-mock needs Python 3.11 or newer: set PYTHON=python3.11')"
	@$(PYTHON) -c "import importlib.util as u, sys; sys.exit(0 if u.find_spec('pip') or u.find_spec('ensurepip') else '$(PYTHON) has neither pip nor ensurepip to set up .venv with (Debian, Ubuntu: apt install python3-venv)')"
	$(PYTHON) -m venv --without-pip $(VENV)
	@echo "$(BIN)/uv sync --extra test (uv from pip; pip itself where uv cannot reach its index)"
	@{ $(PYTHON) -m pip --python $(BIN)/python install --quiet uv 2>/dev/null \
	   || { $(BIN)/python -m ensurepip --default-pip >/dev/null && $(BIN)/python -m pip install --quiet uv; }; } \
	  && { env $(UV_SETTINGS_LEFT_OUT) UV_PROJECT_ENVIRONMENT=$(VENV) \
	         $(BIN)/uv sync --quiet --inexact --extra test --python $(BIN)/python \
	       || { echo "uv could not install from uv.lock: it resolves the test extra afresh" >&2; \
	            $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test]' pip; }; } \
	  || { echo "uv could not install the virtualenv: pip installs it" >&2; \
	       $(BIN)/python -m ensurepip --default-pip >/dev/null 2>&1; \
	       $(BIN)/python -m pip install --quiet --no-compile -e '.[test]'; }
	@installed=$(VENV)/.installed-$$($(INSTALLED_FROM)); rm -f $(VENV)/.installed-*; touch $$installed; \
	  [ $$installed = $@ ] \
	  || echo "uv.lock did not match pyproject.toml: uv resolved it again and wrote it anew (keep it with your change)" >&2

# A user's uv settings that would install less than the test extra in full, or elsewhere (UV_FROZEN with a uv.lock
# pyproject.toml has outgrown left its new dependency out; UV_NO_DEV the pip; UV_NO_INSTALL_PROJECT ivh-mock itself):
# left out of the sync. Where uv looks for packages (UV_INDEX_URL, ...) stays the user's.
UV_SETTINGS_LEFT_OUT := $(foreach name,FROZEN LOCKED NO_DEFAULT_GROUPS NO_DEV NO_EDITABLE NO_INSTALL_LOCAL \
                          NO_INSTALL_PROJECT PROJECT WORKING_DIR,-u UV_$(name))

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis bench/.prism
