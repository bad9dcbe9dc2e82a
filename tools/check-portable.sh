#!/usr/bin/env bash
# Cross-compiles the library for aarch64 (the non-x86 build: generic kernels only, no x86 dispatch) with the
# project's warning flags and -Werror, proving the portable path builds. Installs the cross compiler if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=aarch64-linux-gnu-g++
if ! command -v "$cxx" >/dev/null 2>&1; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends g++-aarch64-linux-gnu libtbb-dev >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for src in lib/*.cpp lib/kernels/kernels_scalar.cpp; do
  "$cxx" -std=c++20 -O2 -fPIC -ffp-contract=off -fno-math-errno -Wall -Wextra -Wpedantic -Wno-psabi -Werror \
    -Iinclude -Ilib -c "$src" -o "$out/$(basename "$src").o"
done
"$cxx" -shared -o "$out/libgroupnorm.so" "$out"/*.o
echo "check-portable: aarch64 build of libgroupnorm OK ($(ls "$out"/*.o | wc -l) objects)"
