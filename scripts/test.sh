#!/usr/bin/env bash
# Runs every test (make test), as root, on two tracks at the same time:
#   - the packages' tests (unit, kernel, the full-kernel VM), then the
#     end-to-end scenarios inside the VM (e2e/vm), once per engine in
#     VM_ENGINES;
#   - the lab's own tests, then the end-to-end suite on Docker 20.10 and
#     29.8 and its bridge scenarios on 29.8's nftables backend.
# Every step runs even if one before it failed; the last lines say how each
# went and how long it took.
#
# Why two tracks: the VM steps take both cores under TCG, while the e2e lab
# spends much of its time waiting (dockerd starts, probes that must go
# unanswered), so both tracks finish later but everything sooner. The lab
# tests and the three e2e runs each need the machine's one lab (lab.New's
# lock), so they run one after the other; the VM has a lab of its own.
# Usage: scripts/test.sh BRIDGE_TESTS VM_ENGINES
#   BRIDGE_TESTS  a go test -run pattern for the nftables run
#   VM_ENGINES    engine directories for e2e/vm (WEFT_VM_ENGINES), e.g.
#                 "build/engines/29.8 /usr/sbin"
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then
  echo "usage: $0 BRIDGE_TESTS VM_ENGINES" >&2
  exit 2
fi
bridge_tests=$1 vm_engines=$2
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

pkgs=$("$go" list ./... | grep -v -e '/e2e$' -e '/e2e/vm$' -e '/internal/lab$')

# vmtrack: the packages, then e2e/vm once per engine, each a step of its
# own (TestDockerInVM boots one VM per engine; -v so that every scenario's
# name and verdict is in the output).
vmtrack() {
  local rc=0 dir name
  timed packages labelled packages "$go" test -count=1 -timeout 30m $pkgs || rc=1
  for dir in $vm_engines; do
    name="vm $("$dir/dockerd" --version 2>/dev/null | sed -n 's/^Docker version \([0-9.]*\).*/\1/p')"
    timed "e2e $name" labelled "$name" env WEFT_VM_ENGINES="$(realpath "$dir")" \
      "$go" test -v -count=1 -timeout 40m -run TestDockerInVM ./e2e/vm || rc=1
  done
  return "$rc"
}

# Its own process group, so an interrupted run stops it too.
set -m
vmtrack &
vmpid=$!
set +m
trap 'kill -- -'"$vmpid"' 2>/dev/null; rm -f "$summary"' EXIT

status=0
timed lab labelled lab "$go" test -count=1 -timeout 15m ./internal/lab || status=1
timed "e2e 20.10 iptables" scripts/e2e.sh 20.10 iptables || status=1
timed "e2e 29.8 iptables" scripts/e2e.sh 29.8 iptables || status=1
timed "e2e 29.8 nftables" scripts/e2e.sh 29.8 nftables -run "$bridge_tests" || status=1
wait "$vmpid" || status=1

echo "== make test"
cat "$summary"
printf '%-20s %-4s %dm%02ds\n' total "$([ $status -eq 0 ] && echo ok || echo FAIL)" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60))
exit $status
