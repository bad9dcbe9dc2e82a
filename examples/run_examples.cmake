# Driver of the `examples` test (cmake -P): install the build tree into a fresh prefix, then, using only that
# prefix and no LD_LIBRARY_PATH, build and run every example as README shows it:
#   C and C++ through find_package (examples/CMakeLists.txt), hello.c through pkg-config, hello.py with
#   /usr/bin/python3 and the installed module, cli_session.sh with the installed `groupnorm`.
# Inputs: BUILD_DIR, SOURCE_DIR (examples/), WORK_DIR, LIBDIR, PYTHON_DIR (module dir relative to the prefix),
# GENERATOR, C_COMPILER, CXX_COMPILER, SANITIZE, TOOLCHAIN_FILE and EMULATOR ('|'-separated
# CMAKE_CROSSCOMPILING_EMULATOR) for cross builds, which run the C and C++ examples only.
cmake_minimum_required(VERSION 3.25)

function(run_step what)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "examples: ${what} failed (${rc})\n--- stdout\n${out}\n--- stderr\n${err}")
  endif()
  message(STATUS "examples: ${what}: ok\n${out}${err}")
endfunction()

string(REPLACE "|" ";" emulator "${EMULATOR}")
set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
run_step("install into ${prefix}" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

set(flags "")
if(SANITIZE)  # an instrumented libgroupnorm needs the sanitizer runtime in the program too
  set(flags -fsanitize=${SANITIZE})
endif()
run_step("configure examples/" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
  -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_CXX_COMPILER=${CXX_COMPILER} "-DCMAKE_C_FLAGS=${flags}"
  "-DCMAKE_CXX_FLAGS=${flags}" "-DCMAKE_CROSSCOMPILING_EMULATOR=${emulator}"
  "-DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN_FILE}")
run_step("build examples/" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step("run the C and C++ examples" ${CMAKE_CTEST_COMMAND} --test-dir ${WORK_DIR}/build --output-on-failure)

if(TOOLCHAIN_FILE)
  message(STATUS "examples: pkg-config, Python and shell examples skipped (cross build)")
  return()
endif()

# README's C compile line, verbatim apart from the paths.
include(${CMAKE_CURRENT_LIST_DIR}/../tests/consumer/pkg_config_flags.cmake)
groupnorm_pkg_config_flags(pc_flags ${prefix} ${LIBDIR})
run_step("cc hello.c $(pkg-config --cflags --libs groupnorm)"
  ${C_COMPILER} ${flags} ${SOURCE_DIR}/hello.c ${pc_flags} -o ${WORK_DIR}/hello_pkgconfig)
run_step("run hello (pkg-config build)" ${WORK_DIR}/hello_pkgconfig)

if(EXISTS ${prefix}/bin/groupnorm)
  run_step("cli_session.sh" ${CMAKE_COMMAND} -E env "PATH=${prefix}/bin:$ENV{PATH}" bash ${SOURCE_DIR}/cli_session.sh)
endif()
file(GLOB module ${prefix}/${PYTHON_DIR}/groupnorm*)
if(module AND NOT SANITIZE)
  run_step("hello.py" ${CMAKE_COMMAND} -E env PYTHONPATH=${prefix}/${PYTHON_DIR} /usr/bin/python3 ${SOURCE_DIR}/hello.py)
else()
  message(STATUS "examples: hello.py not run (Python module not installed, or a sanitizer build)")
endif()
