# CMake toolchain file: cross-build simdgan for aarch64 (the NEON kernels) with
# Debian's gcc-aarch64-linux-gnu, and run its C tests under qemu-aarch64.
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=tools/aarch64-linux-gnu.cmake \
#         -DSIMDGAN_HWLOC=OFF -DSIMDGAN_OPENMP=OFF
#   cmake --build build-arm64 -j && ctest --test-dir build-arm64
# Needs zlib1g-dev:arm64, libjansson-dev:arm64, liblapacke-dev:arm64
# (dpkg --add-architecture arm64) and qemu-user. OpenMP
# off under emulation: Debian 12's qemu-user hangs in libgomp's barrier.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# pkg-config (jansson, LAPACKE) must read the arm64 .pc files, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
