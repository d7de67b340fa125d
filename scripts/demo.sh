#!/usr/bin/env bash
# Shows weft working on the local engine: a weft bridge network with weft's
# IPAM, two containers that find each other by name, then a clean removal.
# Usage: scripts/demo.sh [PLUGIN]   (default weft:latest)
set -euo pipefail
plugin=${1:-weft:latest}
image=${DEMO_IMAGE:-busybox:latest}
net=weft-demo

cleanup() {
  docker rm -f weft-demo-a weft-demo-b >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

set -x
docker network create -d "$plugin" --ipam-driver "$plugin" --subnet 10.77.0.0/24 --gateway 10.77.0.1 "$net"
docker run -d --name weft-demo-a --network "$net" "$image" sleep 300
docker run --rm --name weft-demo-b --network "$net" "$image" ping -c 3 weft-demo-a
docker network inspect -f '{{.Driver}} {{range .IPAM.Config}}{{.Subnet}} gw {{.Gateway}}{{end}}' "$net"
set +x
echo "weft works: weft-demo-b reached weft-demo-a by name over a weft bridge"
