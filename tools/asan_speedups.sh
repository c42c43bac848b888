#!/usr/bin/env bash
# Build a copy of ethp2p._speedups with AddressSanitizer + UBSan and run, against it, the
# C-extension differential tests and tools/fuzz_speedups.py (SECONDS each, default 60).
# Needs gcc and the Python headers; run after ./dev.sh test has made .venv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:-60}"
py="$here/.venv/bin/python"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$here/src/ethp2p" "$work/ethp2p"
rm -f "$work"/ethp2p/*.so
inc="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
suffix="$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
gcc -shared -fPIC -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -std=c99 -I"$inc" \
    "$here/src/ethp2p/_speedups.c" -o "$work/ethp2p/_speedups$suffix" -ldl
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONPATH="$work"
cd "$here"
"$py" -c 'import ethp2p._speedups as s, sys; sys.exit(0 if s.__file__.startswith(sys.argv[1]) else "not the sanitized build: " + s.__file__)' "$work"
"$py" -m pytest -q -p no:cacheprovider tests/unit/test_speedups.py tests/unit/test_fast_paths.py tests/unit/test_verifier.py
"$py" tools/fuzz_speedups.py 1 "$secs"
