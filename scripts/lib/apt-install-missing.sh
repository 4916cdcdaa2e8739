# Sourced by the install scripts: apt_install_missing LABEL PACKAGE... installs the Debian
# packages that are not installed yet, running apt-get update only when something is missing,
# so a second run does nothing.
apt_install_missing() {
  local label=$1
  shift
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "$label: all packages present"
    return 0
  fi
  echo "$label: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
