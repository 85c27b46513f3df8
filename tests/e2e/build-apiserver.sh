#!/usr/bin/env bash
# Builds kube-apiserver 1.20.2 from Debian's `kubernetes` source package
# (vendored dependencies, offline) with Debian's Go 1.19, and installs
# etcd-server. The binary is cached outside the repository, keyed by
# version, so later runs on the same machine skip the ~7 minute build.
#
# Kubernetes 1.20 vendors github.com/modern-go/reflect2 1.0.1, which faults
# under Go >= 1.18 when encoding maps (the API server crashes on the first
# custom resource). reflect2 1.0.2 fixes it; Debian packages its source
# (golang-github-modern-go-reflect2-dev), and it replaces the vendored copy.
# Prints the path of the binary on stdout; everything else goes to stderr.
set -euo pipefail

version=1.20.2
cache=${PORTKEY_GUARD_CACHE:-$HOME/.cache/portkey-guard}
binary=$cache/kube-apiserver-$version-reflect2-1.0.2
reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
mkdir -p "$cache"

log() { echo "build-apiserver: $*" >&2; }

need_packages=()
[ -x /usr/lib/go-1.19/bin/go ] || need_packages+=(golang-1.19-go)
command -v etcd >/dev/null || need_packages+=(etcd-server)
command -v rsync >/dev/null || need_packages+=(rsync)
command -v openssl >/dev/null || need_packages+=(openssl)
[ -f "$reflect2/go_above_118.go" ] || need_packages+=(golang-github-modern-go-reflect2-dev)
if [ ${#need_packages[@]} -gt 0 ]; then
  log "installing ${need_packages[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >&2
fi

if [ -x "$binary" ] && "$binary" --version 2>/dev/null | grep -q "v$version"; then
  log "cached: $binary"
  echo "$binary"
  exit 0
fi

src=$cache/src
mkdir -p "$src"
orig=$(ls "$src"/kubernetes_*really${version}.orig.tar.gz 2>/dev/null | head -1 || true)
if [ -z "$orig" ]; then
  if ! ls /etc/apt/sources.list.d/*.sources 2>/dev/null | xargs grep -qs '^Types: deb-src'; then
    log "adding deb-src entries"
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      > /etc/apt/sources.list.d/debian-src.sources
    apt-get update -qq >&2
  fi
  log "downloading the kubernetes source package"
  (cd "$src" && apt-get source --download-only kubernetes >&2)
  orig=$(ls "$src"/kubernetes_*really${version}.orig.tar.gz | head -1)
fi

tree=$src/kubernetes-$version
if [ ! -d "$tree" ]; then
  log "unpacking $orig"
  rm -rf "$tree.tmp" && mkdir -p "$tree.tmp"
  tar -xzf "$orig" -C "$tree.tmp" --strip-components=1
  mv "$tree.tmp" "$tree"
fi

vendored=$tree/vendor/github.com/modern-go/reflect2
if [ ! -f "$vendored/go_above_118.go" ]; then
  log "replacing vendored reflect2 1.0.1 with Debian's 1.0.2"
  rm -f "$vendored"/*.go "$vendored"/*.s
  cp "$reflect2"/*.go "$reflect2"/*.s "$vendored"/
  sed -i 's|^# github.com/modern-go/reflect2 v1.0.1 => github.com/modern-go/reflect2 v1.0.1$|# github.com/modern-go/reflect2 v1.0.1 => github.com/modern-go/reflect2 v1.0.2|' "$tree/vendor/modules.txt"
fi

log "building kube-apiserver (5 to 7 minutes on 2 cores)"
(cd "$tree" && PATH=/usr/lib/go-1.19/bin:$PATH GO111MODULE=off GOFLAGS= \
  make WHAT=cmd/kube-apiserver >&2)
install -m 0755 "$tree/_output/bin/kube-apiserver" "$binary.tmp"
mv "$binary.tmp" "$binary"
log "built $binary"
echo "$binary"
