#!/usr/bin/env bash
# Runs every test (make test), as root: the packages' tests (unit, kernel,
# the full-kernel VM) and, at the same time, the lab's own tests and the
# end-to-end suite on Docker 20.10 and 29.8 and its bridge scenarios on
# 29.8's nftables backend. Every step runs even if one before it failed;
# the last lines say how each went and how long it took.
#
# Why at the same time: the packages take minutes of both cores (the VM,
# internal/vmlab, most), while the e2e lab spends much of its time waiting
# (dockerd starts, probes that must go unanswered), so the e2e runs finish
# later but everything sooner. The lab tests and the three e2e runs each
# need the machine's one lab (lab.New's lock), so they run one after the
# other, and they are the long pole.
# Usage: scripts/test.sh BRIDGE_TESTS   (a go test -run pattern for nftables)
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ]; then
  echo "usage: $0 BRIDGE_TESTS" >&2
  exit 2
fi
bridge_tests=$1
go=${GO:-go}
start=$SECONDS
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT

# timed NAME COMMAND...: runs COMMAND and adds its verdict and time to the
# summary.
timed() {
  local name=$1 s=$SECONDS rc=0 verdict=ok
  shift
  "$@" || rc=$?
  [ "$rc" -eq 0 ] || verdict=FAIL
  printf '%-20s %-4s %dm%02ds\n' "$name" "$verdict" $(((SECONDS - s) / 60)) $(((SECONDS - s) % 60)) >>"$summary"
  return "$rc"
}

# labelled NAME COMMAND...: runs COMMAND with each line of its output
# starting with [NAME], as scripts/e2e.sh labels its own.
labelled() {
  local name=$1
  shift
  "$@" 2>&1 | sed -u "s/^/[$name] /"
  return "${PIPESTATUS[0]}"
}

# e2e/vm (Docker engines in the full-kernel VM) runs by `make e2e-vm` only,
# not yet here: one engine takes about 18 minutes under TCG, which the
# 30-minute budget of .ci/run cannot hold beside the e2e runs, and its
# RoutingMesh scenario fails in the VM lab for Docker's own overlay too.
pkgs=$("$go" list ./... | grep -v -e '/e2e$' -e '/e2e/vm$' -e '/internal/lab$')
# Its own process group, so an interrupted run stops it too.
set -m
timed packages labelled packages "$go" test -count=1 -timeout 30m $pkgs &
pkgpid=$!
set +m
trap 'kill -- -'"$pkgpid"' 2>/dev/null; rm -f "$summary"' EXIT

status=0
timed lab labelled lab "$go" test -count=1 -timeout 15m ./internal/lab || status=1
timed "e2e 20.10 iptables" scripts/e2e.sh 20.10 iptables || status=1
timed "e2e 29.8 iptables" scripts/e2e.sh 29.8 iptables || status=1
timed "e2e 29.8 nftables" scripts/e2e.sh 29.8 nftables -run "$bridge_tests" || status=1
wait "$pkgpid" || status=1

echo "== make test"
cat "$summary"
printf '%-20s %-4s %dm%02ds\n' total "$([ $status -eq 0 ] && echo ok || echo FAIL)" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60))
exit $status
