# What `cmake --install` puts in place for apps: one library, libt2r, as a shared object (exporting
# the C API's t2r_* symbols only) and as a static archive (every object of the runtime, its CPU
# kernels and, where built, the Vulkan backend), t2r.h, a CMake package (find_package(t2r) gives
# t2r::t2r, shared, and t2r::t2r_static), a pkg-config file and the Python module.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(T2R_PACKAGE_DIR "${CMAKE_BINARY_DIR}/package")
set(T2R_ARCHIVES t2r t2r_runtime t2r_format)
if(TARGET t2r_vulkan)
  list(APPEND T2R_ARCHIVES t2r_vulkan)
endif()

add_library(t2r_shared SHARED runtime/c_api.cpp)
target_link_libraries(t2r_shared PRIVATE ${T2R_ARCHIVES})
target_link_options(t2r_shared PRIVATE "-Wl,--version-script=${CMAKE_SOURCE_DIR}/cmake/t2r_exports.map")
set_target_properties(t2r_shared PROPERTIES OUTPUT_NAME t2r VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
                      LIBRARY_OUTPUT_DIRECTORY "${T2R_PACKAGE_DIR}"
                      LINK_DEPENDS "${CMAKE_SOURCE_DIR}/cmake/t2r_exports.map")

# The static archives merged into one with an ar script (the in-tree libraries stay separate, so
# the tools link only what they use).
set(T2R_MERGED_ARCHIVE "${T2R_PACKAGE_DIR}/libt2r.a")
set(mri "CREATE ${T2R_MERGED_ARCHIVE}\n")
foreach(archive ${T2R_ARCHIVES})
  string(APPEND mri "ADDLIB $<TARGET_FILE:${archive}>\n")
endforeach()
string(APPEND mri "SAVE\nEND\n")
file(GENERATE OUTPUT "${T2R_PACKAGE_DIR}/libt2r.mri" CONTENT "${mri}")
add_custom_command(OUTPUT "${T2R_MERGED_ARCHIVE}"
  COMMAND "${CMAKE_COMMAND}" -E rm -f "${T2R_MERGED_ARCHIVE}"
  COMMAND sh -c "\"${CMAKE_AR}\" -M < \"${T2R_PACKAGE_DIR}/libt2r.mri\""
  DEPENDS ${T2R_ARCHIVES} "${T2R_PACKAGE_DIR}/libt2r.mri"
  COMMENT "Merging the static libraries into libt2r.a" VERBATIM)
add_custom_target(t2r_static_archive ALL DEPENDS "${T2R_MERGED_ARCHIVE}")

# What a static link needs besides libt2r.a: the C++ runtime (the CMake package says so by
# language), threads, and dlopen for the Vulkan loader.
set(T2R_STATIC_LIBS "-lstdc++ -lm -pthread")
if(TARGET t2r_vulkan)
  set(T2R_NEEDS_DL TRUE)
  string(APPEND T2R_STATIC_LIBS " -ldl")
else()
  set(T2R_NEEDS_DL FALSE)
endif()

install(TARGETS t2r_shared LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}")
install(FILES "${T2R_MERGED_ARCHIVE}" DESTINATION "${CMAKE_INSTALL_LIBDIR}")
install(FILES runtime/include/t2r.h DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
# The Python module finds the shared library two directories up from itself.
install(FILES bindings/python/t2r.py DESTINATION "${CMAKE_INSTALL_LIBDIR}/t2r/python")
configure_package_config_file(cmake/t2rConfig.cmake.in "${T2R_PACKAGE_DIR}/t2rConfig.cmake"
                              INSTALL_DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/t2r")
write_basic_package_version_file("${T2R_PACKAGE_DIR}/t2rConfigVersion.cmake" COMPATIBILITY SameMinorVersion)
install(FILES "${T2R_PACKAGE_DIR}/t2rConfig.cmake" "${T2R_PACKAGE_DIR}/t2rConfigVersion.cmake"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/t2r")
# The pkg-config file finds the prefix from where it lies, so an install under any --prefix works.
file(RELATIVE_PATH T2R_PC_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(cmake/t2r.pc.in "${T2R_PACKAGE_DIR}/t2r.pc" @ONLY)
install(FILES "${T2R_PACKAGE_DIR}/t2r.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
