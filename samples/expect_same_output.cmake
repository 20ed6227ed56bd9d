# Runs a sample and a reference command and fails unless both succeed and the sample printed
# exactly what the reference printed (and not nothing).  Used by the samples' CTest tests:
#
#   cmake -DSAMPLE=<program|arg|...> -DREFERENCE=<program|arg|...>
#         [-DREFERENCE_STDIN=<line|line|...>] [-DREFERENCE_APPEND_NEWLINE=ON]
#         -P expect_same_output.cmake
#
# Arguments are separated by '|' (CMake would split on ';').  REFERENCE_STDIN lines are fed to
# the reference, each followed by a newline.  REFERENCE_APPEND_NEWLINE adds the newline a sample
# prints at the end that the reference does not (rwkvrt generate adds none when piped).
foreach(var SAMPLE REFERENCE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "expect_same_output.cmake: -D${var}=... is required")
  endif()
  string(REPLACE "|" ";" ${var} "${${var}}")
endforeach()

execute_process(COMMAND ${SAMPLE} RESULT_VARIABLE sample_rc OUTPUT_VARIABLE sample_out
                ERROR_VARIABLE sample_err)
if(NOT sample_rc EQUAL 0)
  message(FATAL_ERROR "the sample failed (${sample_rc}):\n${sample_err}")
endif()

set(input_args)
if(DEFINED REFERENCE_STDIN)
  string(REPLACE "|" "\n" stdin_text "${REFERENCE_STDIN}")
  set(stdin_file ${CMAKE_CURRENT_BINARY_DIR}/expect_same_output_stdin.txt)
  file(WRITE ${stdin_file} "${stdin_text}\n")
  set(input_args INPUT_FILE ${stdin_file})
endif()
execute_process(COMMAND ${REFERENCE} ${input_args} RESULT_VARIABLE reference_rc
                OUTPUT_VARIABLE reference_out ERROR_VARIABLE reference_err)
if(NOT reference_rc EQUAL 0)
  message(FATAL_ERROR "the reference command failed (${reference_rc}):\n${reference_err}")
endif()
if(REFERENCE_APPEND_NEWLINE)
  string(APPEND reference_out "\n")
endif()

string(STRIP "${sample_out}" sample_text)
if(sample_text STREQUAL "")
  message(FATAL_ERROR "the sample printed no text")
endif()
if(NOT sample_out STREQUAL reference_out)
  message(FATAL_ERROR "the sample's output differs from the reference's.\n"
                      "sample:\n[${sample_out}]\nreference:\n[${reference_out}]")
endif()
message(STATUS "same output (${sample_out})")
