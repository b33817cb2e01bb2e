# windows-zip.cmake: the Windows release, `cpack -G ZIP` in build-win64:
#
#   simdgan-<version>-win64/simdgan.exe
#   simdgan-<version>-win64/*.dll          the MinGW run-time DLLs it needs
#   simdgan-<version>-win64/models/        the evaluation classifiers, found
#                                          beside the .exe (sg_exe_dir)
#   simdgan-<version>-win64/README.md      docs/windows/README.md
#
# The same DLLs are copied beside the build's .exe files, so that they run
# under Wine (ctest) exactly as they will from the zip.

# The DLLs simdgan.exe and the tests load besides Windows' own: libgomp
# (OpenMP) and what it needs, winpthreads (the barrier), zlib. jansson is
# linked statically. The compiler knows where its DLLs are.
set(SG_WIN_DLLS libgomp-1.dll libgcc_s_seh-1.dll libwinpthread-1.dll zlib1.dll)
set(SG_WIN_DLL_PATHS)
foreach(dll ${SG_WIN_DLLS})
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=${dll}
    OUTPUT_VARIABLE path OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT IS_ABSOLUTE "${path}" OR NOT EXISTS "${path}")
    message(FATAL_ERROR "${dll}: not found by ${CMAKE_C_COMPILER}; expected MinGW-w64's "
      "gcc (posix threads) and libz-mingw-w64-dev")
  endif()
  get_filename_component(path "${path}" REALPATH)
  list(APPEND SG_WIN_DLL_PATHS "${path}")
  configure_file("${path}" ${CMAKE_BINARY_DIR}/${dll} COPYONLY)
  configure_file("${path}" ${CMAKE_BINARY_DIR}/tests/${dll} COPYONLY)
endforeach()

install(TARGETS simdgan RUNTIME DESTINATION .)
install(FILES ${SG_WIN_DLL_PATHS} DESTINATION .)
install(FILES models/classifier-mnist.safetensors models/classifier-fashion-mnist.safetensors
  models/README.md DESTINATION models)
install(FILES docs/windows/README.md DESTINATION .)

set(CPACK_GENERATOR ZIP)
set(CPACK_PACKAGE_NAME simdgan)
set(CPACK_PACKAGE_VENDOR "simdgan")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "train the PyTorch MNIST GAN tutorial on the CPU, fast")
set(CPACK_PACKAGE_FILE_NAME "simdgan-${PROJECT_VERSION}-win64")
set(CPACK_INCLUDE_TOPLEVEL_DIRECTORY ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
