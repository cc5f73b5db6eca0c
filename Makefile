# Build and test patchops.docker. Every target sets up what it needs itself,
# on a fresh Debian 12 machine with pyenv's Pythons: `make test` runs it all.
#
#   make venv         Debian packages + the five virtual environments below
#   make lint         ansible-lint (production profile) + antsibull-changelog lint
#   make sanity       ansible-test sanity: core 2.17 on Python 3.11 (+ compile/import
#                     on 3.9, the oldest target Python), core 2.21 on Python 3.13
#   make units        pytest tests/unit under core 2.17 and core 2.21
#   make build        build the tarball, check its members, install it, ansible-doc from it
#   make integration  sandbox up, pytest tests/integration per controller and Docker engine kind, sandbox down
#   make test         venv lint sanity units build integration, fail fast, with a summary
#   make demo | bench | clean | distclean
#
# Virtual environments (.venv/NAME), rebuilt only when their requirements change:
#   core217  Python 3.11, ansible-core 2.17 + tests/requirements.txt  (oldest controller)
#   core221  Python 3.13, ansible-core 2.21 + tests/requirements.txt  (newest controller)
#   tools    Python 3.13, tests/requirements-tools.txt (ansible-lint, antsibull-changelog, ansible-builder, antsibull-docs)
#   target39 Python 3.9 with docker>=7.0 and jmespath (for query): the module side on the oldest target Python
#   nosdk    Python 3.9 without the Docker SDK

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV := .venv
PYENV_ROOT := $(or $(PYENV_ROOT),$(shell pyenv root 2>/dev/null),$(HOME)/.pyenv)
# newest installed patch release of a pyenv Python minor version
pyenv_python = $(or $(shell ls -d $(PYENV_ROOT)/versions/$(1).*/bin/python 2>/dev/null | sort -V | tail -n1),$(error Python $(1) not found under $(PYENV_ROOT)/versions))
PY39 = $(call pyenv_python,3.9)
PY311 = $(call pyenv_python,3.11)
PY313 = $(call pyenv_python,3.13)

CORE217 := ansible-core>=2.17,<2.18
CORE221 := ansible-core>=2.21,<2.22
REQS := tests/requirements.txt
TOOLS_REQS := tests/requirements-tools.txt
# Debian packages the tooling runs: shellcheck for ansible-test's shellcheck test, chromium
# for the fleet report's browser test. (The sandbox, python3 tests/sandbox, installs what it needs.)
APT_PACKAGES := shellcheck chromium
SANDBOX := python3 tests/sandbox

.PHONY: help collection-link venv apt-packages venv-core217 venv-core221 venv-tools venv-target39 venv-nosdk \
	lint sanity units build integration test demo bench clean distclean

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' Makefile

# --- set-up ---------------------------------------------------------------

venv: apt-packages venv-core217 venv-core221 venv-tools venv-target39 venv-nosdk

apt-packages:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -qx 'install ok installed' || echo "$$p"; done); \
	if [[ -n $$missing ]]; then \
		echo "apt: installing" $$missing; \
		apt-get -o DPkg::Lock::Timeout=600 update -qq; \
		DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	fi

venv-core217:
	@tests/tooling/mkvenv $(VENV)/core217 $(PY311) '$(CORE217)' -r $(REQS)

venv-core221:
	@tests/tooling/mkvenv $(VENV)/core221 $(PY313) '$(CORE221)' -r $(REQS)

venv-tools:
	@tests/tooling/mkvenv $(VENV)/tools $(PY313) -r $(TOOLS_REQS)

venv-target39:
	@tests/tooling/mkvenv $(VENV)/target39 $(PY39) 'docker>=7.0' 'jmespath'

venv-nosdk:
	@tests/tooling/mkvenv $(VENV)/nosdk $(PY39)

# --- checks -----------------------------------------------------------------

# ansible-lint resolves patchops.docker.* in the demo and docs playbooks through this link.
collection-link:
	@mkdir -p .build/collections/ansible_collections/patchops
	@ln -sfn ../../../.. .build/collections/ansible_collections/patchops/docker

lint: venv-tools collection-link
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.build/collections PATH=$(CURDIR)/$(VENV)/tools/bin:$$PATH ansible-lint
	$(VENV)/tools/bin/antsibull-changelog lint
	$(VENV)/tools/bin/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

# all three runs, then the first failure's exit code
sanity: apt-packages venv-core217 venv-core221
	@rc=0; \
	for run in 'core217 3.11' 'core217 3.9 --test compile --test import' 'core221 3.13'; do \
		set -- $$run; venv=$$1; shift; \
		echo "+ tests/tooling/sanity $(VENV)/$$venv $$*"; \
		tests/tooling/sanity $(VENV)/$$venv "$$@" || { s=$$?; echo "sanity: FAILED: $$run" >&2; [[ $$rc != 0 ]] || rc=$$s; }; \
	done; \
	exit $$rc

units: venv-core217 venv-core221
	$(VENV)/core217/bin/python -m pytest tests/unit -q
	$(VENV)/core221/bin/python -m pytest tests/unit -q

build: venv-core217 venv-core221
	tests/tooling/build_smoke $(VENV)/core217 $(VENV)/core221

# every venv: the packaging tests run .venv/tools' ansible-builder, the report test chromium
integration: venv
	tests/tooling/integration

test:
	@tests/tooling/stages venv lint sanity units build integration

# --- showing and measuring ------------------------------------------------

demo: venv
	bash demo/run.sh

bench: venv
	bash benchmarks/run.sh

# --- cleaning ---------------------------------------------------------------

clean:
	rm -rf .build tests/output .ansible

distclean: clean
	if [[ -f tests/sandbox/__main__.py ]]; then $(SANDBOX) down --purge; fi
	rm -rf $(VENV)
