#!/usr/bin/env bash
# Runs the end-to-end suite on one Docker engine and firewall backend. Every
# line of its output (go test -v) starts with "[docker ENGINE BACKEND]", so
# each test result says which engine it is for; the last line gives the
# verdict and the time taken.
# Usage: scripts/e2e.sh ENGINE BACKEND [go test flags...]
#   ENGINE   20.10 (Debian's /usr/sbin/dockerd) or a version built by
#            `make engines` into build/engines/ENGINE (29.8)
#   BACKEND  iptables or nftables (dockerd --firewall-backend, Docker 28+)
# e.g.   scripts/e2e.sh 29.8 nftables -run 'TestBridge|TestICCOff'
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: $0 ENGINE BACKEND [go test flags...]" >&2
  exit 2
fi
engine=$1 backend=$2
shift 2

unset WEFT_LAB_FIREWALL_BACKEND WEFT_LAB_DOCKERD WEFT_LAB_DOCKER
case $engine in
  20.10)
    dockerd=/usr/sbin/dockerd
    # Debian's CLI, of the same release.
    export WEFT_LAB_DOCKER=/usr/bin/docker
    ;;
  *)
    dockerd=$PWD/build/engines/$engine/dockerd
    # A current CLI (28.2 here) for a current engine, as its users have.
    if [ -x /usr/local/bin/docker ]; then
      export WEFT_LAB_DOCKER=/usr/local/bin/docker
    fi
    ;;
esac
if [ ! -x "$dockerd" ]; then
  echo "e2e: no dockerd for engine $engine at $dockerd (make engines builds it)" >&2
  exit 1
fi
case $backend in
  iptables)
    # Docker 20.10 has no --firewall-backend; iptables is all it has.
    [ "$engine" = 20.10 ] || export WEFT_LAB_FIREWALL_BACKEND=iptables ;;
  nftables) export WEFT_LAB_FIREWALL_BACKEND=nftables ;;
  *) echo "e2e: backend $backend: use iptables or nftables" >&2; exit 2 ;;
esac
export WEFT_LAB_DOCKERD=$dockerd WEFT_E2E_ENGINE=$engine

label="docker $engine $backend"
start=$(date +%s)
set +e
${GO:-go} test -count=1 -v -timeout 30m "$@" ./e2e 2>&1 | sed -u "s/^/[$label] /"
rc=${PIPESTATUS[0]}
set -e
took=$(($(date +%s) - start))
verdict=ok
[ "$rc" -eq 0 ] || verdict=FAIL
printf '[%s] e2e %s in %dm%02ds\n' "$label" "$verdict" $((took / 60)) $((took % 60))
exit "$rc"
