# One ctest case of `groupnorm run`, as a CMake script (cmake -P), so it runs anywhere ctest does.
#   -DTOOL=path        the groupnorm executable
#   -DEMULATOR=a|b     command that runs TOOL (CMAKE_CROSSCOMPILING_EMULATOR when cross-compiling), or empty
#   -DFIXTURES=dir     tests/cli/fixtures; "F/" at the start of an argument is replaced by "<dir>/"
#   -DWORK=dir         scratch directory, emptied first; the tool runs inside it
#   -DARGS=a|b|c       arguments after `run`, separated by '|'
#   -DRC=n             expected exit status
#   -DERR=text         text that stderr must contain (and, when RC != 0, stderr must be exactly one line)
#   -DOUT=text         text that stdout must contain
#   -DEXISTS=a|b       files (in WORK) that must exist afterwards
#   -DABSENT=a|b       files (in WORK) that must not exist afterwards
#   -DSETUP=src>dst|.. copy fixture src to WORK/dst before running
#   -DARGS2=...        optional second run (expected to succeed), e.g. with another thread count
#   -DSAME=a|b         files (in WORK) that must be byte-identical afterwards
cmake_minimum_required(VERSION 3.25)

function(split var text)
  string(REPLACE "|" ";" items "${text}")
  set(${var} "${items}" PARENT_SCOPE)
endfunction()

function(expand var text)
  split(items "${text}")
  set(out "")
  foreach(a IN LISTS items)
    if(a MATCHES "^F/")
      string(REGEX REPLACE "^F/" "${FIXTURES}/" a "${a}")
    endif()
    list(APPEND out "${a}")
  endforeach()
  set(${var} "${out}" PARENT_SCOPE)
endfunction()

function(check_run args expected_rc)
  split(emulator "${EMULATOR}")
  execute_process(COMMAND ${emulator} ${TOOL} run ${args} WORKING_DIRECTORY ${WORK}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "groupnorm run ${args}\n  exit ${rc}\n  stderr: ${err}")
  if(NOT rc STREQUAL expected_rc)
    message(FATAL_ERROR "exit status ${rc}, expected ${expected_rc}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
  set(last_err "${err}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

if(DEFINED SETUP)
  split(pairs "${SETUP}")
  foreach(p IN LISTS pairs)
    string(REPLACE ">" ";" sd "${p}")
    list(GET sd 0 src)
    list(GET sd 1 dst)
    get_filename_component(dst_dir "${WORK}/${dst}" DIRECTORY)
    file(MAKE_DIRECTORY "${dst_dir}")
    file(COPY_FILE "${FIXTURES}/${src}" "${WORK}/${dst}")
  endforeach()
endif()

expand(args "${ARGS}")
check_run("${args}" "${RC}")

if(DEFINED ERR)
  string(FIND "${last_err}" "${ERR}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "stderr does not contain '${ERR}'")
  endif()
endif()
if(DEFINED OUT)
  string(FIND "${last_out}" "${OUT}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "stdout does not contain '${OUT}'")
  endif()
endif()
if(NOT RC EQUAL 0)
  string(REGEX MATCHALL "\n" newlines "${last_err}")
  list(LENGTH newlines n)
  if(NOT n EQUAL 1 OR NOT last_err MATCHES "^groupnorm run: [^\n]+\n$")
    message(FATAL_ERROR "stderr is not one line starting with 'groupnorm run: '")
  endif()
endif()

if(DEFINED ARGS2)
  expand(args2 "${ARGS2}")
  check_run("${args2}" 0)
endif()

if(DEFINED EXISTS)
  split(files "${EXISTS}")
  foreach(f IN LISTS files)
    if(NOT EXISTS "${WORK}/${f}")
      message(FATAL_ERROR "${f} was not written")
    endif()
  endforeach()
endif()
if(DEFINED ABSENT)
  split(files "${ABSENT}")
  foreach(f IN LISTS files)
    if(EXISTS "${WORK}/${f}")
      message(FATAL_ERROR "${f} exists after a failed run")
    endif()
  endforeach()
endif()
file(GLOB leftovers "${WORK}/.*.tmp-*")
if(leftovers)
  message(FATAL_ERROR "temporary files left behind: ${leftovers}")
endif()
if(DEFINED SAME)
  split(files "${SAME}")
  list(GET files 0 a)
  list(GET files 1 b)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files "${WORK}/${a}" "${WORK}/${b}" RESULT_VARIABLE differ)
  if(differ)
    message(FATAL_ERROR "${a} and ${b} differ")
  endif()
endif()
