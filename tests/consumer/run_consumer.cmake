# Driver of the consumer_find_package test (cmake -P). Inputs: BUILD_DIR, CONSUMER_SOURCE, WORK_DIR, CONFIG,
# GENERATOR, CXX_COMPILER, C_COMPILER, SANITIZE, EXPECTED_VERSION, LIBDIR, TOOLCHAIN_FILE and EMULATOR
# ('|'-separated command that runs the consumer's programs) when cross-compiling.
cmake_minimum_required(VERSION 3.25)

# Every step runs without LD_LIBRARY_PATH: installed programs must find libgroupnorm through their RPATH.
function(run_step what)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test: ${what} failed (${rc})\n--- stdout\n${out}\n--- stderr\n${err}")
  endif()
  message(STATUS "consumer test: ${what}: ok\n${out}")
endfunction()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

set(config_args)
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
run_step("install into ${prefix}" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} ${config_args})

# The consumer must see only the install prefix: no package registry, nothing from this source or build tree.
set(configure_args
  -S ${CONSUMER_SOURCE} -B ${build} -G ${GENERATOR}
  -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_PREFIX_PATH=${prefix}
  -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
  -DCMAKE_FIND_PACKAGE_NO_SYSTEM_PACKAGE_REGISTRY=ON
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
  -DCMAKE_C_COMPILER=${C_COMPILER}
  -DGROUPNORM_EXPECTED_PREFIX=${prefix}
  -DGROUPNORM_EXPECTED_VERSION=${EXPECTED_VERSION})
if(SANITIZE)
  # An instrumented libgroupnorm needs the sanitizer runtime loaded first: build the consumer with it too.
  list(APPEND configure_args
    -DCMAKE_CXX_FLAGS=-fsanitize=${SANITIZE}
    -DCMAKE_C_FLAGS=-fsanitize=${SANITIZE}
    -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=${SANITIZE})
endif()
if(TOOLCHAIN_FILE)
  list(APPEND configure_args -DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN_FILE})
endif()
string(REPLACE "|" ";" emulator "${EMULATOR}")
run_step("configure the consumer" ${CMAKE_COMMAND} ${configure_args})
run_step("build the consumer" ${CMAKE_COMMAND} --build ${build})
run_step("run the C++ consumer" ${emulator} ${build}/groupnorm_consumer_cpp)
run_step("run the C consumer" ${emulator} ${build}/groupnorm_consumer_c)

# The installed tool starts from the prefix alone.
if(EXISTS ${prefix}/bin/groupnorm)
  run_step("bin/groupnorm --version" ${emulator} ${prefix}/bin/groupnorm --version)
else()
  message(FATAL_ERROR "consumer test: ${prefix}/bin/groupnorm was not installed")
endif()

# A C program built with the installed groupnorm.pc alone (host builds: the host pkg-config knows the host's tbb).
if(TOOLCHAIN_FILE)
  message(STATUS "consumer test: pkg-config build skipped (cross build)")
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/pkg_config_flags.cmake)
groupnorm_pkg_config_flags(pc_flags ${prefix} ${LIBDIR})
set(san_flags "")
if(SANITIZE)
  set(san_flags -fsanitize=${SANITIZE})
endif()
run_step("cc main.c $(pkg-config --cflags --libs groupnorm)"
  ${C_COMPILER} -std=c99 ${san_flags} ${CONSUMER_SOURCE}/main.c ${pc_flags} -lm -o ${WORK_DIR}/consumer_pkgconfig)
run_step("run the pkg-config C consumer" ${emulator} ${WORK_DIR}/consumer_pkgconfig)
