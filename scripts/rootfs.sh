#!/usr/bin/env bash
# Assembles the managed plugin's root filesystem from the weft binary and the
# build host's iptables (Debian's package), with no image pull and no registry.
# Usage: scripts/rootfs.sh BINARY ROOTFS
set -euo pipefail
binary=$1 rootfs=$2

rm -rf "$rootfs"
mkdir -p "$rootfs"/{run/docker/plugins,var/lib/weft,host/proc,etc,tmp,usr/sbin}
install -m 0755 "$binary" "$rootfs/weft"

# Copy a file with every shared library it loads, keeping their paths.
copy_with_libs() {
  local f=$1
  mkdir -p "$rootfs$(dirname "$f")"
  cp -L "$f" "$rootfs$f"
  ldd "$f" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
    [ -e "$lib" ] || continue
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
}

for multi in xtables-nft-multi xtables-legacy-multi; do
  path=$(command -v "$multi" || true)
  if [ -z "$path" ]; then
    echo "rootfs: $multi not found; install Debian's iptables package" >&2
    exit 1
  fi
  copy_with_libs "$path"
  cp -L "$path" "$rootfs/usr/sbin/$multi"
done
# iptables loads its match and target extensions at run time.
# libxtables looks for them at its compiled-in path, which on usrmerged
# Debian is the real path below /usr, not the /lib alias ldd prints.
xtlib=$(readlink -f "$(dirname "$(ldd "$(command -v xtables-nft-multi)" | grep -o '/[^ ]*libxtables[^ ]*' | head -1)")")/xtables
if [ -d "$xtlib" ]; then
  mkdir -p "$rootfs$xtlib"
  cp -a "$xtlib"/. "$rootfs$xtlib"/
  for so in "$xtlib"/*.so; do
    ldd "$so" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
      [ -e "$lib" ] && mkdir -p "$rootfs$(dirname "$lib")" && cp -L "$lib" "$rootfs$lib"
    done
  done
fi
for fam in iptables ip6tables; do
  for suffix in "" -save -restore; do
    ln -sf xtables-nft-multi "$rootfs/usr/sbin/$fam-nft$suffix"
    ln -sf xtables-legacy-multi "$rootfs/usr/sbin/$fam-legacy$suffix"
    ln -sf xtables-nft-multi "$rootfs/usr/sbin/$fam$suffix"
  done
done
cp /etc/protocols "$rootfs/etc/protocols" 2>/dev/null || true
cp /etc/ethertypes "$rootfs/etc/ethertypes" 2>/dev/null || true
# Mount points dockerd binds for host-network plugins.
touch "$rootfs/etc/hosts" "$rootfs/etc/resolv.conf"
echo "rootfs: $(du -sh "$rootfs" | cut -f1) in $rootfs"
