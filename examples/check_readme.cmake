# README quotes these examples verbatim: fail when a quoted program and its file differ (cmake -P).
# Inputs: README (path), EXAMPLES (examples/ directory), FILES ('|'-separated names in EXAMPLES).
cmake_minimum_required(VERSION 3.25)
file(READ ${README} readme)
string(REPLACE "|" ";" files "${FILES}")
foreach(name IN LISTS files)
  file(READ ${EXAMPLES}/${name} text)
  string(STRIP "${text}" text)
  string(FIND "${readme}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "README.md does not quote examples/${name} as it is: copy the file into its code block")
  endif()
endforeach()
message(STATUS "README quotes ${files} verbatim")
