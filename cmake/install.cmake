# install.cmake: what `cmake --install` puts where, and the .deb (CPack).
#
#   bin/simdgan                          the command (simdgan_core linked in)
#   LIBDIR/libsimdgan.so.N, .so, .a      the library; N = SIMDGAN_API_VERSION
#   include/simdgan.h                    its API
#   LIBDIR/pkgconfig/simdgan.pc          pkg-config --cflags --libs simdgan
#   LIBDIR/cmake/simdgan/                find_package(simdgan): simdgan::simdgan,
#                                        and simdgan::simdgan_static with COMPONENTS static
#   share/man/man1/simdgan.1.gz          the manual
#   share/simdgan/models/                the evaluation classifiers, found from
#                                        the binary as ../share/simdgan/models
#   SIMDGAN_INSTALL_PYTHONDIR/simdgan/   the Python module (ctypes)
#   share/doc/simdgan/                   README.md, examples/ (the example program)
#
# Everything is found relative to where it lies, so the tree can be moved
# after `cmake --install build --prefix P`, except simdgan.pc, which is
# written at install time with the prefix installed into.
# Windows has its own layout: cmake/windows-zip.cmake.
if(WIN32)
  include(cmake/windows-zip.cmake)
  return()
endif()

include(CMakePackageConfigHelpers)

set(SIMDGAN_INSTALL_PYTHONDIR "lib/python3/dist-packages" CACHE STRING
  "Where the Python module goes, relative to the prefix (Debian's layout by default)")
set(SIMDGAN_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/simdgan")

install(TARGETS simdgan RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS simdgan_shared EXPORT simdgan-targets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS simdgan_static EXPORT simdgan-static-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES include/simdgan.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES models/classifier-mnist.safetensors models/classifier-fashion-mnist.safetensors
  models/README.md DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/simdgan/models)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES examples/train_one_epoch.c examples/CMakeLists.txt
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# ---- CMake package ------------------------------------------------------------
install(EXPORT simdgan-targets NAMESPACE simdgan:: DESTINATION ${SIMDGAN_INSTALL_CMAKEDIR})
install(EXPORT simdgan-static-targets NAMESPACE simdgan:: DESTINATION ${SIMDGAN_INSTALL_CMAKEDIR})
configure_package_config_file(cmake/simdgan-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/cmake/simdgan-config.cmake
  INSTALL_DESTINATION ${SIMDGAN_INSTALL_CMAKEDIR} NO_SET_AND_CHECK_MACRO)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/cmake/simdgan-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/cmake/simdgan-config.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/cmake/simdgan-config-version.cmake
  DESTINATION ${SIMDGAN_INSTALL_CMAKEDIR})

# ---- pkg-config ----------------------------------------------------------------
# The template gets everything now but the prefix, which the install step
# fills in (it is only known then: --prefix, or CPack's /usr).
configure_file(cmake/simdgan.pc.in ${CMAKE_CURRENT_BINARY_DIR}/cmake/simdgan.pc.in @ONLY)
install(CODE "
  file(READ \"${CMAKE_CURRENT_BINARY_DIR}/cmake/simdgan.pc.in\" pc)
  string(REPLACE \"%PREFIX%\" \"\${CMAKE_INSTALL_PREFIX}\" pc \"\${pc}\")
  set(dst \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/simdgan.pc\")
  message(STATUS \"Installing: \${dst}\")
  file(WRITE \"\${dst}\" \"\${pc}\")
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${dst}\")
")

# ---- the manual ------------------------------------------------------------------
add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/man/simdgan.1.gz
  COMMAND ${CMAKE_COMMAND} -E copy ${PROJECT_SOURCE_DIR}/man/simdgan.1 ${CMAKE_CURRENT_BINARY_DIR}/man/simdgan.1
  COMMAND gzip -9nf ${CMAKE_CURRENT_BINARY_DIR}/man/simdgan.1
  DEPENDS ${PROJECT_SOURCE_DIR}/man/simdgan.1 VERBATIM)
add_custom_target(simdgan_man ALL DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/man/simdgan.1.gz)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/man/simdgan.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# ---- the Python module -------------------------------------------------------------
# _install.py tells the module where this install put the library and the
# models, relative to itself (a pip-installed module has no such file).
function(sg_relative out from to)
  if(IS_ABSOLUTE "${from}" OR IS_ABSOLUTE "${to}")
    set(${out} "${to}" PARENT_SCOPE)
  else()
    file(RELATIVE_PATH rel "/prefix/${from}" "/prefix/${to}")
    set(${out} "${rel}" PARENT_SCOPE)
  endif()
endfunction()
sg_relative(SIMDGAN_PY_LIBRARY "${SIMDGAN_INSTALL_PYTHONDIR}/simdgan"
  "${CMAKE_INSTALL_LIBDIR}/libsimdgan.so.${SIMDGAN_SOVERSION}")
sg_relative(SIMDGAN_PY_MODELS "${SIMDGAN_INSTALL_PYTHONDIR}/simdgan"
  "${CMAKE_INSTALL_DATAROOTDIR}/simdgan/models")
configure_file(cmake/_install.py.in ${CMAKE_CURRENT_BINARY_DIR}/python/_install.py @ONLY)
install(DIRECTORY python/simdgan/ DESTINATION ${SIMDGAN_INSTALL_PYTHONDIR}/simdgan
  FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/python/_install.py
  DESTINATION ${SIMDGAN_INSTALL_PYTHONDIR}/simdgan)

# ---- the .deb: cpack -G DEB in the build folder ----------------------------------------
# One package with everything above, for /usr. dpkg-shlibdeps (dpkg-dev) works
# out the run-time dependencies (libc6, zlib1g, libhwloc15, libgomp1,
# libjansson4, liblapacke); the Python module also wants numpy.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME simdgan)
set(CPACK_PACKAGE_VENDOR "simdgan")
set(CPACK_PACKAGE_CONTACT "simdgan maintainers <maintainers@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "train the PyTorch MNIST GAN tutorial on the CPU, fast")
set(CPACK_PACKAGE_DESCRIPTION "simdgan trains the classic PyTorch MNIST GAN tutorial with\
 PyTorch's semantics, using cache-blocked SGEMM and fused kernels for AVX2, AVX-512 and NEON\
 chosen at run time. The command, the C library (shared and static, pkg-config and CMake\
 package), its Python module and the evaluation classifiers.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3, python3-numpy")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "python3-torch")
include(CPack)
