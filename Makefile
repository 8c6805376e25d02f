# Every target sets itself up: a fresh clone needs Python 3.11+; `make test` also Node/npm and the
# distribution's nginx, PostgreSQL and Chromium (installed by the `system` target when run as root).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
INSPECTOR_VERSION := 2.12.0
INSPECTOR := .tools/node_modules/.bin/mcp-inspector
TS_SDK_VERSION := 1.32.2
TS_CLIENT_VERSION := 2.4.0
# The venv's packages are installed with uv (itself installed into the venv by pip): the same packages,
# bytecode included, in about 10 s where pip takes 45 s on these machines; pip where uv fails.
UV_VERSION := 0.13.10
TS_SDK := .tools/.ts-sdk-$(TS_SDK_VERSION)-client-$(TS_CLIENT_VERSION)  # a stamp: the Inspector brings its own client

.PHONY: run team test lint typecheck unit profile-readers e2e snapshots bench fuzz clean system iso-data bytecode

run: $(STAMP) bytecode  ## serve Streamable HTTP on 127.0.0.1:8765 against the embedded sandbox
	$(VENV)/bin/pcref-mcp serve --http

team: $(STAMP) bytecode  ## team mode on 127.0.0.1:8765: the sandbox and a stand-in identity provider (test users)
	$(VENV)/bin/pcref-mcp team --stand-in

# Everything CI runs: lint, types, the unit runs and the end-to-end runs side by side, each starting
# as soon as its own set-up is done (the venv, npm's clients, apt's servers; those three wait on the
# network, so they overlap too): the unit runs need no npm package, so they start while npm still
# installs. e2e spends most of its time waiting on the servers, browsers and clients it starts, so it
# fills the gaps the unit runs leave on the two cores. Each target's output is printed whole when it
# ends (--output-sync), so nothing interleaves.
test:  ## everything CI runs
	@$(MAKE) --no-print-directory -j8 --output-sync=target lint typecheck unit e2e

# Two runs side by side, one per core: the sandbox-facing tests on both sandbox profiles (lenient and
# strict, as documented); every other test once, split between the two runs for balance (team identity
# with the lenient run, which runs every sandbox-facing test; store, operations, packaging and the
# domain's own tests, tests/referrals, which never reach the sandbox (tests/test_profile_split.py checks
# that), with the strict run). The strict run takes everything but what the lenient run takes once, so a new test
# directory is never left out. Of SANDBOX_TESTS it runs only the tests that read the sandbox profile,
# as the lenient run records them (tests/profile_reads.py): the rest pass or fail alike under both.
# The lenient run fails if the manifest of those tests, tests/profile_readers.txt, is out of date;
# `make profile-readers` rewrites it.
SANDBOX_TESTS := tests/server tests/client tests/contract tests/sandbox tests/writes tests/reliability
SPLIT = PCREF_SANDBOX_TESTS="$(SANDBOX_TESTS)" PCREF_POSTGRES_REQUIRED=$(AS_ROOT)
# The unit runs need PostgreSQL (the team store's tests) but neither nginx nor Chromium: they wait for
# `system` only where PostgreSQL is missing, so on a machine that lacks only nginx or Chromium they start
# while apt installs those for e2e.
HAVE_POSTGRES := $(shell command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && echo 1)
unit: $(STAMP) $(if $(HAVE_POSTGRES),,system) bytecode  ## the suite on both sandbox profiles, two runs side by side
	@log=$$(mktemp); \
	$(SPLIT) PCREF_PROFILE_SPLIT=readers PCREF_SANDBOX_PROFILE=strict $(PY) -m pytest --ignore=tests/team >$$log 2>&1 & strict=$$!; \
	$(SPLIT) PCREF_PROFILE_SPLIT=record PCREF_SANDBOX_PROFILE=lenient $(PY) -m pytest $(SANDBOX_TESTS) tests/team; lenient=$$?; \
	wait $$strict; status=$$?; echo "--- the strict sandbox profile (all but tests/team; of SANDBOX_TESTS, the profile's readers)"; cat $$log; rm -f $$log; \
	[ $$lenient -eq 0 ] && [ $$status -eq 0 ]

profile-readers: $(STAMP) system  ## rewrite tests/profile_readers.txt: the SANDBOX_TESTS that read the sandbox profile
	$(SPLIT) PCREF_PROFILE_SPLIT=record PCREF_UPDATE_SNAPSHOTS=1 PCREF_SANDBOX_PROFILE=lenient $(PY) -m pytest $(SANDBOX_TESTS)

# The team deployment's tests (store contract, deploy/ end to end) need PostgreSQL and nginx, and the web
# pages people use (consent, approval) are tested in the distribution's headless Chromium: installed
# from the distribution where missing when run as root (CI); otherwise those tests say what to install.
AS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo 1)
system:
	@missing=""; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	[ -n "$(HAVE_POSTGRES)" ] || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ] && [ "$(AS_ROOT)" = 1 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing (apt-get)" >&2; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q $$missing >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null; }; \
	elif [ -n "$$missing" ]; then echo "the team-stack tests need:$$missing (apt-get install$$missing)" >&2; fi

# The project's own modules as bytecode, as `pip install` leaves an installed package. An editable
# install leaves none, and where PYTHONDONTWRITEBYTECODE is set (these machines set it) every process
# would compile the sources again: about 0.6 s of CPU for each server, replica and test process
# started. compileall writes only what changed, and Python checks each file against its source.
bytecode: $(STAMP)
	@PYTHONDONTWRITEBYTECODE= $(PY) -m compileall -q -j0 pcref_mcp deploy bench >/dev/null

lint: $(STAMP)
	$(VENV)/bin/ruff check pcref_mcp tests bench deploy scripts
	$(VENV)/bin/ruff format --check pcref_mcp tests bench deploy scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy pcref_mcp

# Two runs side by side, about equally long: team mode (the deployed stacks of nginx, replicas and
# PostgreSQL; the OAuth sign-in and the consent page) and everything else (the third-party clients
# over stdio and HTTP, the approval page, the transports). Both mostly wait on the processes they
# start, so together they take about the longer one's time for the same CPU. The second run takes
# every e2e file but team mode's, so a new one is never left out.
E2E_TEAM := $(addprefix tests/e2e/test_,operations.py scale.py proxy_replicas.py team_oauth.py consent_browser.py)
E2E_ENV := PCREF_E2E_REQUIRED=1 PCREF_INSPECTOR=$(CURDIR)/$(INSPECTOR) PCREF_TOOLS_DIR=$(CURDIR)/.tools
e2e: $(STAMP) $(INSPECTOR) $(TS_SDK) system bytecode  ## third-party clients over stdio and HTTP, the browser pages, the deployed team stack
	@log=$$(mktemp); \
	$(E2E_ENV) $(PY) -m pytest -m e2e $(E2E_TEAM) >$$log 2>&1 & team=$$!; \
	$(E2E_ENV) $(PY) -m pytest -m e2e tests/e2e $(addprefix --ignore=,$(E2E_TEAM)); rest=$$?; \
	wait $$team; status=$$?; echo "--- team mode ($(notdir $(E2E_TEAM)))"; cat $$log; rm -f $$log; \
	[ $$rest -eq 0 ] && [ $$status -eq 0 ]

snapshots: $(STAMP)  ## accept a reviewed change to the tool list (snapshot + README tool reference) or the import rules
	PCREF_UPDATE_SNAPSHOTS=1 $(PY) -m pytest tests/test_tool_snapshot.py tests/test_readme.py tests/test_layers.py

iso-data: $(STAMP)  ## regenerate referrals/iso_data.py from pycountry (a test says when it is due)
	$(PY) scripts/iso_data.py

bench: $(STAMP) bytecode  ## regenerate docs/benchmarks.md
	$(PY) -m bench

fuzz: $(STAMP)  ## the long fuzz run recorded in docs/reliability.md
	PCREF_FUZZ_EXAMPLES=10000 $(PY) -m pytest -m slow tests/reliability

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "pcref-mcp needs Python 3.11 or newer; run: make PYTHON=python3.11 ..." >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check 'uv==$(UV_VERSION)' && \
		$(VENV)/bin/uv pip install -q --python $(PY) --compile-bytecode -e '.[dev]' || \
		$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

$(INSPECTOR):
	@command -v npm >/dev/null || { echo "the e2e check needs Node.js 20+ and npm" >&2; exit 1; }
	npm install --prefix .tools --no-audit --no-fund --save-exact --loglevel=error \
		@modelcontextprotocol/inspector@$(INSPECTOR_VERSION)

$(TS_SDK): | $(INSPECTOR)  # after the Inspector: one npm install at a time into .tools/
	npm install --prefix .tools --no-audit --no-fund --save-exact --loglevel=error \
		@modelcontextprotocol/sdk@$(TS_SDK_VERSION) @modelcontextprotocol/client@$(TS_CLIENT_VERSION)
	touch $@

clean:
	rm -rf $(VENV) .tools
