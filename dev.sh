#!/usr/bin/env bash
# ethp2p set-up in one command each:
#   ./dev.sh demo   -> creates .venv, installs ethp2p, runs the main job (the demo)
#   ./dev.sh test   -> creates .venv, installs ethp2p + test deps (+ the interop peer), runs every test
#   ./dev.sh sim NAME -> runs one simulated-network scenario (tests/sim) and prints what happened
# Anything after the first word is passed on (e.g. ./dev.sh test -k rlp).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
venv="$here/.venv"
py="${PYTHON:-python3}"

ensure_venv() {
    # Reinstall (and rebuild the C extension) when the project definition or the C source changes.
    local stamp="$venv/.installed-$(cat pyproject.toml setup.py src/ethp2p/_speedups.c | sha256sum | cut -c1-16)"
    if [ ! -x "$venv/bin/python" ]; then
        "$py" -m venv "$venv"
    fi
    if [ ! -f "$stamp" ]; then
        "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
        "$venv/bin/python" -m pip install -q -e ".[test]"
        rm -f "$venv"/.installed-* && touch "$stamp"
    fi
}

cmd="${1:-demo}"
shift || true
case "$cmd" in
    demo)
        ensure_venv
        exec "$venv/bin/ethp2p" demo "$@"
        ;;
    test)
        ensure_venv
        bash "$here/tests/interop/install_peer.sh" || echo "warning: interop peer install failed; interop tests will fail" >&2
        # A real DNS server for the EIP-1459 tests (Debian's dnsmasq); skipped with a reason if unavailable.
        if ! command -v dnsmasq >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            (apt-get install -y -q dnsmasq-base >/dev/null 2>&1 \
                || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dnsmasq-base >/dev/null 2>&1)) \
                || echo "warning: could not install dnsmasq; DNS discovery tests will be skipped" >&2
        fi
        # Run the whole suite in a private network namespace when we can (root or user namespaces):
        # every socket then lives on its own loopback, and nothing can reach a public address.
        runner=()
        if [ "${ETHP2P_NO_NETNS:-0}" != 1 ] && command -v unshare >/dev/null && command -v ip >/dev/null \
            && unshare -n true 2>/dev/null; then
            # ETHP2P_NETNS tells tests they may use other loopback addresses (127.0.0.2, ...): inside
            # this namespace those reach nothing but the suite's own servers.
            runner=(unshare -n sh -c 'ip link set lo up && ETHP2P_NETNS=private exec "$@"' sh)
        fi
        set +e
        "${runner[@]}" "$venv/bin/python" -m pytest -q "$@"
        rc=$?
        set -e
        # pytest exits 5 when no test was collected: treat that as a failure to run anything.
        if [ "$rc" -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi
        exit "$rc"
        ;;
    sim)
        # A simulated network scenario by hand (tests/sim): ./dev.sh sim --list
        ensure_venv
        exec "$venv/bin/python" -m tests.sim "$@"
        ;;
    *)
        ensure_venv
        exec "$venv/bin/ethp2p" "$cmd" "$@"
        ;;
esac
