# install() + exported package config, so consumers can find_package(groupnorm) and link groupnorm::groupnorm.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

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
