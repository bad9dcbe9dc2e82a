#!/usr/bin/env bash
# One-command entry points for a fresh Debian 12 machine:
#   tools/quickstart.sh bench   install missing packages, build (Release), run `groupnorm bench` on the default suite
#   tools/quickstart.sh test    install missing packages, build with -Werror, run the whole test suite (ctest)
#   tools/quickstart.sh asan    the test suite under AddressSanitizer + UndefinedBehaviorSanitizer
# Extra arguments after `bench` go to `groupnorm bench`.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake g++ make libtbb-dev doctest-dev pkg-config)
install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "quickstart: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

jobs=$(nproc 2>/dev/null || echo 2)
mode=${1:-}
[ $# -gt 0 ] && shift
case "$mode" in
  bench)
    install_missing
    cmake --preset default >/dev/null
    cmake --build --preset default -j "$jobs" --target groupnorm_tool
    exec ./build/default/tools/groupnorm bench "$@"
    ;;
  test)
    install_missing
    cmake --preset ci
    cmake --build --preset ci -j "$jobs"
    exec ctest --preset ci -j "$jobs"
    ;;
  asan)
    install_missing
    cmake --preset asan
    cmake --build --preset asan -j "$jobs"
    exec ctest --preset asan -j "$jobs"
    ;;
  *)
    echo "usage: tools/quickstart.sh bench|test|asan [bench options]" >&2
    exit 2
    ;;
esac
