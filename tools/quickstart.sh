#!/usr/bin/env bash
# One-command entry points for a fresh Debian 12 machine:
#   tools/quickstart.sh bench   install missing packages, build (Release), run `groupnorm bench` on the default suite
#   tools/quickstart.sh test    install missing packages, build with -Werror, run the whole test suite (ctest)
#   tools/quickstart.sh asan    the test suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   tools/quickstart.sh tsan    the test suite under ThreadSanitizer (oneTBB seen through tests/tsan/itt_tsan_bridge.cpp)
#   tools/quickstart.sh fuzz    build the libFuzzer targets with clang and run each for GROUPNORM_FUZZ_SECONDS (60)
#   tools/quickstart.sh arm64   cross-build for aarch64 (-Werror) and run the ARM test set under qemu-user
#   tools/quickstart.sh torch   install libtorch and PyTorch, build the libtorch operator into the `test` build tree
#                               and run the PyTorch tests and examples
# Extra arguments after `bench` go to `groupnorm bench`.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake g++ make libtbb-dev libcli11-dev doctest-dev pkg-config pybind11-dev python3-dev python3-numpy python3-pytest)
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

# Extra packages of the fuzz mode: clang and its runtime libraries (libFuzzer, ASan, UBSan).
fuzz_packages=(clang libclang-rt-14-dev)

# Extra packages of the arm64 mode: the cross compiler, oneTBB for arm64 (a multiarch package, hence
# `dpkg --add-architecture arm64`) and qemu-user. doctest is header-only: the host package serves.
arm64_packages=(g++-aarch64-linux-gnu libtbb-dev:arm64 qemu-user-static)
add_arm64_architecture() {
  dpkg --print-foreign-architectures | grep -qx arm64 && return 0
  echo "quickstart: dpkg --add-architecture arm64" >&2
  if [ "$(id -u)" -eq 0 ]; then dpkg --add-architecture arm64; else sudo dpkg --add-architecture arm64; fi
}

# Extra packages of the torch mode: libtorch for find_package(Torch), PyTorch for groupnorm.torch and its tests.
torch_packages=(libtorch-dev python3-torch)

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
  tsan)
    install_missing
    cmake --preset tsan
    cmake --build --preset tsan -j "$jobs"
    exec ctest --preset tsan -j "$jobs"
    ;;
  fuzz)
    packages+=("${fuzz_packages[@]}")
    install_missing
    cmake --preset fuzz -DGROUPNORM_FUZZ_SECONDS="${GROUPNORM_FUZZ_SECONDS:-60}"
    cmake --build --preset fuzz -j "$jobs"
    exec ctest --preset fuzz -j "$jobs"
    ;;
  arm64)
    add_arm64_architecture
    packages+=("${arm64_packages[@]}")
    install_missing
    cmake --preset aarch64
    cmake --build --preset aarch64 -j "$jobs"
    exec ctest --preset aarch64 -j "$jobs"
    ;;
  torch)
    packages+=("${torch_packages[@]}")
    install_missing
    cmake --preset ci
    cmake --build --preset ci -j "$jobs"
    exec ctest --preset ci -j "$jobs" -R torch
    ;;
  *)
    echo "usage: tools/quickstart.sh bench|test|asan|tsan|fuzz|arm64|torch [bench options]" >&2
    exit 2
    ;;
esac
