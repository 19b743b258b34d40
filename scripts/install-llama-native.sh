#!/usr/bin/env bash
# Rebuilds xllamacpp (llama.cpp, the `local` backend) for this machine's CPU, once per CPU.
#
# Why: the PyPI wheel is compiled for AVX2 so that it runs anywhere. On a CPU with AVX-512/VNNI a native
# build processes the prompt about 1.4x as fast (79 against 56 tokens/s for the 1.5B Q4_K_M model on
# 2 threads, `python scripts/bench_llama_build.py`), and prompt processing is most of the time to the first
# token. The build takes about 8 minutes on 2 cores, so the wheel is kept in
# ${RAG_CACHE_DIR:-~/.cache/rag-chat}/wheels under a key made of the xllamacpp version and the CPU's flags:
# another clone on the same machine installs it in seconds, and a cache copied to a different CPU is never
# used. pip's own wheel cache is not used for this because it is keyed by the source archive only, and would
# hand the same native wheel to a CPU that lacks those instructions.
#
# On a CPU whose widest vector units are AVX2 (what the wheel already uses) the rebuild buys little: 48.0
# against 44.8 prompt tokens/s (1.07x), generation 0.98x, on an AVX2-only EPYC, side by side. So by default
# (RAG_NATIVE_LLAMA=auto) it is built only where the CPU has AVX-512, AVX-VNNI or AMX, and 8 minutes of a
# fresh install are saved elsewhere; RAG_NATIVE_LLAMA=1 builds anyway.
# Any failure (no compiler, no cmake, a build error) leaves the prebuilt wheel in place: slower, never broken.
# RAG_NATIVE_LLAMA=0 skips the rebuild.
# Usage: scripts/install-llama-native.sh PATH/TO/VENV/bin/python
set -uo pipefail
PY=${1:?usage: install-llama-native.sh VENV_PYTHON}

say() { echo "install-llama-native: $*"; }
# What was installed, for tests/test_install_native.py: "native <key>" or "prebuilt <why>".
MARK="$(dirname "$PY")/../.llama-build"
mark() { echo "$*" >"$MARK"; }

if [ "${RAG_NATIVE_LLAMA:-1}" = 0 ]; then
  say "RAG_NATIVE_LLAMA=0: keeping the prebuilt xllamacpp wheel"; mark "prebuilt RAG_NATIVE_LLAMA=0"; exit 0
fi
if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  say "not x86-64 Linux: the prebuilt wheel is already built for this platform"; mark "prebuilt not x86-64 Linux"
  exit 0
fi
CPUINFO=${RAG_CPUINFO:-/proc/cpuinfo}  # a test points this at a made-up CPU
if [ "${RAG_NATIVE_LLAMA:-auto}" = auto ] && ! grep -m1 '^flags' "$CPUINFO" | grep -qwE 'avx512f|avx_vnni|amx_tile'; then
  say "this CPU has no AVX-512, AVX-VNNI or AMX: the prebuilt (AVX2) wheel is as fast; RAG_NATIVE_LLAMA=1 builds anyway"
  mark "prebuilt no vector units beyond AVX2"; exit 0
fi
for tool in cmake c++ cc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    say "$tool is missing: keeping the prebuilt (AVX2) xllamacpp wheel; install cmake and a C++ compiler for faster prompts"
    mark "prebuilt $tool missing"; exit 0
  fi
done

VERSION=$("$PY" -c 'import importlib.metadata as m; print(m.version("xllamacpp"))') || {
  say "xllamacpp is not installed in this environment"; mark "prebuilt xllamacpp missing"; exit 0; }
FLAGS=$(grep -m1 '^flags' "$CPUINFO" | tr ' ' '\n' | sort | tr '\n' ' ')
KEY="${VERSION}-$(printf '%s %s' "$FLAGS" "$(c++ --version | head -1)" | sha256sum | cut -c1-16)"
CACHE="${RAG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rag-chat}/wheels/xllamacpp-native-$KEY"

if ! ls "$CACHE"/xllamacpp-*.whl >/dev/null 2>&1; then
  say "building xllamacpp $VERSION for this CPU (about 8 minutes on 2 cores; log in $CACHE.log)"
  mkdir -p "$(dirname "$CACHE")"
  TMP="$CACHE.tmp.$$"
  rm -rf "$TMP" "$CACHE"  # a folder without a wheel is what an interrupted run leaves
  # llguidance and BoringSSL are fetched from the network by llama.cpp's build, which is not reachable here;
  # neither is used by this project (no grammars, no HTTPS from llama.cpp).
  if ! CMAKE_ARGS="-DLLAMA_LLGUIDANCE=OFF -DLLAMA_BUILD_BORINGSSL=OFF -DLLAMA_OPENSSL=OFF" \
       NPROC="$(nproc)" "$PY" -m pip wheel -q --no-deps --no-cache-dir --no-binary xllamacpp \
       "xllamacpp==$VERSION" -w "$TMP" >"$CACHE.log" 2>&1; then
    say "the native build failed (last lines below; full log $CACHE.log); keeping the prebuilt wheel"
    tail -5 "$CACHE.log"
    rm -rf "$TMP"
    mark "prebuilt build failed, see $CACHE.log"; exit 0
  fi
  if ! ls "$TMP"/xllamacpp-*.whl >/dev/null 2>&1; then
    say "the native build produced no wheel (log $CACHE.log); keeping the prebuilt wheel"
    rm -rf "$TMP"; mark "prebuilt build produced no wheel"; exit 0
  fi
  mv -T "$TMP" "$CACHE"
fi

WHEEL=$(ls "$CACHE"/xllamacpp-*.whl | head -1)
"$PY" -m pip install -q --no-deps --force-reinstall "$WHEEL" || { say "could not install $WHEEL"; mark "prebuilt install failed"; exit 0; }
# A wheel that cannot load here (it should not happen with the CPU key) is replaced by the prebuilt one.
if ! "$PY" -c 'import xllamacpp; xllamacpp.get_system_info()' >/dev/null 2>&1; then
  say "the native build does not load on this machine; reinstalling the prebuilt wheel"
  "$PY" -m pip install -q --no-deps --force-reinstall --only-binary :all: "xllamacpp==$VERSION"
  mark "prebuilt native build does not load"; exit 0
fi
say "xllamacpp $VERSION built for this CPU: $("$PY" -c 'import xllamacpp; print(" ".join(s.strip() for s in xllamacpp.get_system_info().split("|") if "AVX512 =" in s or "AVX2 =" in s))')"
mark "native $KEY"
