# Cross-compiling simdgan for 64-bit Windows with Debian's MinGW-w64 (the
# posix thread model: winpthreads, which libgomp and the engine's barrier
# need). The C tests run under Wine: ctest starts each .exe through
# CMAKE_CROSSCOMPILING_EMULATOR.
#
#   cmake -S . -B build-win64 -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
#         -DCMAKE_PREFIX_PATH=<jansson's MinGW prefix>
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(SG_MINGW x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${SG_MINGW}-gcc-posix)
set(CMAKE_CXX_COMPILER ${SG_MINGW}-g++-posix)
set(CMAKE_RC_COMPILER ${SG_MINGW}-windres)

# Headers and libraries from the MinGW sysroot and the given prefixes only;
# programs (cmake, pkg-config) from the build machine.
# The prefixes of CMAKE_PREFIX_PATH (jansson built for MinGW) count as part
# of the sysroot.
set(CMAKE_FIND_ROOT_PATH /usr/${SG_MINGW} ${CMAKE_PREFIX_PATH})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (jansson) looks in the MinGW sysroot and in the prefixes of
# CMAKE_PREFIX_PATH only, never in the build machine's own folders.
set(ENV{PKG_CONFIG_LIBDIR} /usr/${SG_MINGW}/lib/pkgconfig)

# Wine 8's 64-bit launcher (Debian's wine64; not on PATH).
find_program(SG_WINE NAMES wine64 wine PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
if(SG_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SG_WINE})
endif()
