#!/usr/bin/env bash
# Builds the Docker engine the e2e lab runs besides Debian's 20.10: dockerd and
# docker-proxy from moby's Go module, and the runc it needs (Debian's 1.1.5
# lacks the time namespace), all from the Go module proxy, into DIR.
# Binaries whose embedded build information (`go version -m`: module
# version, ldflags, tags, cgo) already matches are kept, so a second run
# costs a second; a version change in the Makefile rebuilds them.
# Usage: scripts/engines.sh DIR DOCKER_VERSION MOBY_MODULE_VERSION RUNC_VERSION
# e.g.   scripts/engines.sh build/engines/29.8 29.8.0 v2.0.0-beta.24 v1.5.3
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 DIR DOCKER_VERSION MOBY_MODULE_VERSION RUNC_VERSION" >&2
  exit 2
fi
dir=$1 docker_version=$2 moby_version=$3 runc_version=$4
go=${GO:-go}
moby=github.com/moby/moby/v2
runc=github.com/opencontainers/runc
# Without the version, dockerd reports "library-import" and the lab could
# not tell the engines apart.
ldflags="-X $moby/dockerversion.Version=$docker_version"

# A tab separates the fields of `go version -m`.
tab=$'\t'

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# current BINARY MODULE VERSION LINE... succeeds if the binary was built from
# MODULE at VERSION and every LINE is in its build info.
current() {
  local bin=$1 mod=$2 version=$3 info line
  shift 3
  [ -x "$bin" ] || return 1
  info=$("$go" version -m "$bin" 2>/dev/null) || return 1
  # The mod line ends in the module's checksum: match its start.
  grep -q "^${tab}mod${tab}$mod${tab}$version${tab}" <<<"$info" || return 1
  for line in "$@"; do
    grep -qFx -- "$line" <<<"$info" || return 1
  done
}

moby_lines=(
  "${tab}build${tab}-ldflags=\"$ldflags\""
  "${tab}build${tab}CGO_ENABLED=0"
)
runc_lines=(
  "${tab}build${tab}-tags=seccomp"
  "${tab}build${tab}CGO_ENABLED=1"
)

start=$(date +%s)
built=""
if ! { current "$dir/dockerd" "$moby" "$moby_version" "${moby_lines[@]}" &&
       current "$dir/docker-proxy" "$moby" "$moby_version" "${moby_lines[@]}"; }; then
  echo "engines: building dockerd and docker-proxy $docker_version ($moby@$moby_version) into $dir"
  GOBIN=$dir CGO_ENABLED=0 "$go" install -ldflags "$ldflags" \
    "$moby/cmd/dockerd@$moby_version" "$moby/cmd/docker-proxy@$moby_version"
  built="$built dockerd docker-proxy"
fi
if ! current "$dir/runc" "$runc" "$runc_version" "${runc_lines[@]}"; then
  echo "engines: building runc $runc_version with seccomp into $dir"
  # seccomp needs cgo and libseccomp (Debian: libseccomp-dev pkg-config gcc
  # libc6-dev); without it runc refuses Docker's default profile.
  GOBIN=$dir CGO_ENABLED=1 "$go" install -tags seccomp "$runc@$runc_version"
  built="$built runc"
fi

# What the engine says about itself, checked whether built now or kept.
got=$("$dir/dockerd" --version)
case "$got" in
  "Docker version $docker_version,"*) ;;
  *) echo "engines: $dir/dockerd reports \"$got\", want Docker version $docker_version" >&2; exit 1 ;;
esac
if ! "$dir/runc" --version | grep -q '^libseccomp: '; then
  echo "engines: $dir/runc was built without seccomp" >&2
  exit 1
fi
if [ -n "$built" ]; then
  echo "engines: built$built in $(($(date +%s) - start))s"
else
  echo "engines: Docker $docker_version and runc $runc_version in $dir are current"
fi
