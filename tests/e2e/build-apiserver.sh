#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager 1.20.2 from Debian's
# `kubernetes` source package (vendored dependencies, offline) with Debian's
# Go 1.19, and installs what the suite runs besides them (etcd-server,
# openssl, curl). The binaries are cached outside the repository, keyed by
# version and the reflect2 replacement below, so later runs on the same
# machine skip the build (~7 minutes for the API server, about one more for
# the controller manager, on 2 cores).
#
# Kubernetes 1.20 vendors github.com/modern-go/reflect2 1.0.1, which faults
# under Go >= 1.18 when encoding maps (the API server crashes on the first
# custom resource). reflect2 1.0.2 fixes it; Debian packages its source
# (golang-github-modern-go-reflect2-dev), and it replaces the vendored copy.
#
# The machine is left as it was found apart from the installed packages: a
# deb-src entry added for `apt-get source` is removed again (and the package
# lists refreshed to match), and the etcd service that Debian's etcd-server
# package ships is neither started nor enabled (the suite runs its own etcd).
#
# Prints two lines on stdout: the path of kube-apiserver, then the path of
# kube-controller-manager. Everything else goes to stderr.
set -euo pipefail

version=1.20.2
variant=reflect2-1.0.2
cache=${PORTKEY_GUARD_CACHE:-$HOME/.cache/portkey-guard}
apiserver=$cache/kube-apiserver-$version-$variant
controller_manager=$cache/kube-controller-manager-$version-$variant
reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
src_list=/etc/apt/sources.list.d/portkey-guard-e2e-src.sources
mkdir -p "$cache"

log() { echo "build-apiserver: $*" >&2; }

# Undone on every exit, success or failure.
added_policy_rc=
added_src_list=
restore_machine() {
  if [ -n "$added_policy_rc" ]; then
    rm -f /usr/sbin/policy-rc.d
  fi
  if [ -n "$added_src_list" ]; then
    rm -f "$src_list"
    log "removed the deb-src entries again; refreshing the package lists"
    apt-get update -qq >&2 || log "apt-get update failed after removing $src_list"
  fi
}
trap restore_machine EXIT

# The etcd unit of etcd-server must not run or be enabled: under systemd it
# would hold 127.0.0.1:2379 with its own data, on every boot.
quiet_etcd_service() {
  [ -e /lib/systemd/system/etcd.service ] || [ -e /etc/init.d/etcd ] || return 0
  if [ -d /run/systemd/system ]; then
    if systemctl is-active --quiet etcd.service || systemctl is-enabled --quiet etcd.service; then
      log "stopping and disabling Debian's etcd.service"
      systemctl disable --now etcd.service >&2 2>&1 || log "could not stop and disable etcd.service"
    fi
  elif command -v systemctl >/dev/null; then
    # Not booted with systemd: only the links that would start it at boot.
    if systemctl is-enabled --quiet etcd.service 2>/dev/null; then
      log "disabling Debian's etcd.service"
      systemctl disable etcd.service >&2 2>&1 || log "could not disable etcd.service"
    fi
  elif command -v update-rc.d >/dev/null; then
    update-rc.d etcd disable >&2 2>&1 || log "could not disable /etc/init.d/etcd"
  fi
}

need_packages=()
[ -x /usr/lib/go-1.19/bin/go ] || need_packages+=(golang-1.19-go)
command -v etcd >/dev/null || need_packages+=(etcd-server)
command -v rsync >/dev/null || need_packages+=(rsync)
command -v openssl >/dev/null || need_packages+=(openssl)
command -v curl >/dev/null || need_packages+=(curl)
[ -f "$reflect2/go_above_118.go" ] || need_packages+=(golang-github-modern-go-reflect2-dev)
if [ ${#need_packages[@]} -gt 0 ]; then
  log "installing ${need_packages[*]}"
  # invoke-rc.d asks policy-rc.d before starting a service; 101 means "no".
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    added_policy_rc=1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >&2
  if [ -n "$added_policy_rc" ]; then
    rm -f /usr/sbin/policy-rc.d
    added_policy_rc=
  fi
fi
quiet_etcd_service

cached() { # binary
  [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "v$version"
}

if cached "$apiserver" && cached "$controller_manager"; then
  log "cached: $apiserver"
  log "cached: $controller_manager"
  echo "$apiserver"
  echo "$controller_manager"
  exit 0
fi

src=$cache/src
mkdir -p "$src"
orig=$(ls "$src"/kubernetes_*really${version}.orig.tar.gz 2>/dev/null | head -1 || true)
if [ -z "$orig" ]; then
  if ! grep -qs '^Types:.*deb-src' /etc/apt/sources.list.d/*.sources \
    && ! grep -qs '^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list; then
    log "adding deb-src entries for the download ($src_list)"
    added_src_list=1
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$src_list"
    apt-get update -qq >&2
  fi
  log "downloading the kubernetes source package"
  (cd "$src" && apt-get source --download-only kubernetes >&2)
  orig=$(ls "$src"/kubernetes_*really${version}.orig.tar.gz | head -1)
  restore_machine
  added_src_list=
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

build() { # command name, cached path, what to expect
  local name=$1 binary=$2
  if cached "$binary"; then
    log "cached: $binary"
    return
  fi
  log "building $name ($3 on 2 cores)"
  (cd "$tree" && PATH=/usr/lib/go-1.19/bin:$PATH GO111MODULE=off GOFLAGS= \
    make WHAT="cmd/$name" >&2)
  install -m 0755 "$tree/_output/bin/$name" "$binary.tmp"
  mv "$binary.tmp" "$binary"
  log "built $binary"
}
build kube-apiserver "$apiserver" "5 to 7 minutes"
build kube-controller-manager "$controller_manager" "about a minute more"
echo "$apiserver"
echo "$controller_manager"
