# Cross-compilation to 64-bit ARM Linux with Debian's cross toolchain (g++-aarch64-linux-gnu) and the arm64
# multiarch oneTBB (libtbb-dev:arm64); test programs run under qemu-user (qemu-user-static).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# find_package looks in <prefix>/lib/aarch64-linux-gnu first, where libtbb-dev:arm64 installs TBBConfig.cmake.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Programs built here (tests, the CLI, the consumer project) run through qemu. `-L /`: the arm64 loader and
# libraries are found in their multiarch places (/lib/ld-linux-aarch64.so.1, /usr/lib/aarch64-linux-gnu),
# which is where libtbb12:arm64 is. `-L /usr/aarch64-linux-gnu` (the cross toolchain's sysroot) hangs in
# pthread_create: its loader then also loads the multiarch libc.so.6 next to the cross one.
find_program(GROUPNORM_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${GROUPNORM_QEMU_AARCH64} -L /)
