# check_model_elf.cmake — checks that a model .so is self-contained and exports only the C ABI.
#
#   cmake -DLIB=model.so [-DREADELF=readelf] [-DNM=nm] -P check_model_elf.cmake
#
# A model.so is deployed on its own (dlopen, no other library), so:
#   - DT_NEEDED lists only libc, libm, libpthread and the dynamic loader (no libstdc++, libgcc_s,
#     libgomp, ...);
#   - the dynamic symbols it defines are exactly the sdnn_* functions of sdnn.h (the plan, kernels
#     and runtime internals stay hidden, so several models can live in one process);
#   - no text relocations (position-independent code) and a non-executable stack.
# Works on any model.so, hand-made or produced by sdnnc.
if(NOT LIB)
  message(FATAL_ERROR "usage: cmake -DLIB=model.so -P check_model_elf.cmake")
endif()
if(NOT READELF)
  set(READELF readelf)
endif()
if(NOT NM)
  set(NM nm)
endif()

function(run_tool out)
  execute_process(COMMAND ${ARGN} OUTPUT_VARIABLE text ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ARGN} failed (${rc}): ${err}")
  endif()
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

set(failures "")

run_tool(dynamic ${READELF} -dW ${LIB})
string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*\\[[^]\n]*\\]" needed_lines "${dynamic}")
set(allowed_needed "^(libc\\.so\\.6|libm\\.so\\.6|libpthread\\.so\\.0|ld-linux-x86-64\\.so\\.2)$")
foreach(line IN LISTS needed_lines)
  string(REGEX REPLACE ".*\\[([^]]*)\\]" "\\1" library "${line}")
  if(NOT library MATCHES "${allowed_needed}")
    string(APPEND failures "  needs ${library}\n")
  endif()
endforeach()
if(dynamic MATCHES "TEXTREL")
  string(APPEND failures "  has text relocations\n")
endif()

run_tool(segments ${READELF} -lW ${LIB})
string(REGEX MATCH "GNU_STACK[^\n]*" stack_line "${segments}")
if(NOT stack_line)
  string(APPEND failures "  no PT_GNU_STACK header (executable stack by default)\n")
elseif(stack_line MATCHES " RWE ")
  string(APPEND failures "  executable stack\n")
endif()

set(abi_symbols
  sdnn_context_create sdnn_context_free sdnn_model_free sdnn_model_input sdnn_model_load
  sdnn_model_num_inputs sdnn_model_num_outputs sdnn_model_output sdnn_run sdnn_status_string)
run_tool(symbols ${NM} -D --defined-only --format=posix ${LIB})
string(REPLACE "\n" ";" symbol_lines "${symbols}")
set(exported "")
foreach(line IN LISTS symbol_lines)
  if(line MATCHES "^([^ ]+) ")
    list(APPEND exported "${CMAKE_MATCH_1}")
  endif()
endforeach()
list(SORT exported)
if(NOT exported STREQUAL abi_symbols)
  string(REPLACE ";" " " got "${exported}")
  string(REPLACE ";" " " want "${abi_symbols}")
  string(APPEND failures "  exports [${got}]\n  expected [${want}]\n")
endif()

if(failures)
  message(FATAL_ERROR "${LIB} is not a self-contained model:\n${failures}")
endif()
list(LENGTH needed_lines needed_count)
message(STATUS "${LIB}: ${needed_count} NEEDED entries, all system C libraries; exports the sdnn ABI only")
