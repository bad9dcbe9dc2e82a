# install() + exported package config, pkg-config file and license, so consumers can find_package(groupnorm),
# link groupnorm::groupnorm, or use `pkg-config --cflags --libs groupnorm`. Installed programs find
# libgroupnorm through an $ORIGIN-relative RPATH, so no LD_LIBRARY_PATH is needed whatever the prefix.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(GROUPNORM_LICENSE "Apache-2.0")

install(TARGETS groupnorm groupnorm_warnings EXPORT groupnormTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/groupnorm DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT groupnormTargets NAMESPACE groupnorm:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/groupnorm)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/groupnormConfig.cmake.in
  ${PROJECT_BINARY_DIR}/groupnormConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/groupnorm)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/groupnormConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/groupnormConfig.cmake ${PROJECT_BINARY_DIR}/groupnormConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/groupnorm)

# pkg-config: written at install time with the prefix actually installed to (`cmake --install --prefix P` may
# differ from the configured one), so the paths and the RPATH in Libs are absolute.
configure_file(${CMAKE_CURRENT_LIST_DIR}/groupnorm.pc.in ${PROJECT_BINARY_DIR}/groupnorm.pc.in @ONLY)
install(CODE "
  file(READ \"${PROJECT_BINARY_DIR}/groupnorm.pc.in\" pc)
  string(REPLACE \"%PREFIX%\" \"\${CMAKE_INSTALL_PREFIX}\" pc \"\${pc}\")
  message(STATUS \"Installing: \$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/groupnorm.pc\")
  file(WRITE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/groupnorm.pc\" \"\${pc}\")
")

install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/groupnorm)

# Executables: $ORIGIN/../lib (whatever CMAKE_INSTALL_LIBDIR is); the Python package: tools/python. OPTIONAL, so `cmake --install` succeeds after
# building any subset of the targets (e.g. only the tool).
if(TARGET groupnorm_tool)
  file(RELATIVE_PATH _groupnorm_bin_to_lib "/${CMAKE_INSTALL_BINDIR}" "/${CMAKE_INSTALL_LIBDIR}")
  set_target_properties(groupnorm_tool PROPERTIES INSTALL_RPATH "$ORIGIN/${_groupnorm_bin_to_lib}")
  install(TARGETS groupnorm_tool RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} OPTIONAL)
endif()
