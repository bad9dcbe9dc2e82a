# groupnorm_pkg_config_flags(<var> <prefix> <libdir>): `pkg-config --cflags --libs groupnorm` against the install
# in <prefix> alone, as a list of compiler arguments; fails unless the flags point into <prefix>.
function(groupnorm_pkg_config_flags var prefix libdir)
  find_program(PKG_CONFIG pkg-config REQUIRED)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${prefix}/${libdir}/pkgconfig
                          ${PKG_CONFIG} --cflags --libs groupnorm
                  RESULT_VARIABLE rc OUTPUT_VARIABLE flags ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0 OR NOT flags MATCHES "-I${prefix}")
    message(FATAL_ERROR "pkg-config --cflags --libs groupnorm gave '${flags}' ${err}")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  set(${var} "${flags}" PARENT_SCOPE)
endfunction()
