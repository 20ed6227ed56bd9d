# Compiler settings shared by every target of the project.
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_C_STANDARD 11)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
set(CMAKE_CXX_VISIBILITY_PRESET hidden)
set(CMAKE_C_VISIBILITY_PRESET hidden)
set(CMAKE_VISIBILITY_INLINES_HIDDEN ON)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

# ccache makes CI rebuilds and repeated local builds cheap.
find_program(RWKVRT_CCACHE ccache)
if(RWKVRT_CCACHE)
  set(CMAKE_C_COMPILER_LAUNCHER ${RWKVRT_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${RWKVRT_CCACHE})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${RWKVRT_CCACHE})
endif()

if(RWKVRT_SANITIZE)
  string(REPLACE ";" "," _rwkvrt_san "${RWKVRT_SANITIZE}")
  add_compile_options(-fsanitize=${_rwkvrt_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_rwkvrt_san})
  # clang links the C++ part of the UBSan runtime (and the C++ standard library it refers to)
  # only into programs it links as C++, but a C program linking librwkvrt.so needs it too: the
  # library's vptr and function-type checks call into it.
  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    add_link_options("$<$<LINK_LANGUAGE:C>:-fsanitize-link-c++-runtime;-lstdc++>")
  endif()
  # The runtimes' default options (see the file) go into every executable: the runtimes look
  # their hooks up in the program, and a definition in a library would override the program's.
  add_library(rwkvrt_sanitizer_options OBJECT ${CMAKE_CURRENT_LIST_DIR}/sanitizer_options.c)
  link_libraries("$<$<STREQUAL:$<TARGET_PROPERTY:TYPE>,EXECUTABLE>:rwkvrt_sanitizer_options>")
  # ThreadSanitizer needs LLVM's OpenMP tool Archer to understand the OpenMP runtime's
  # synchronisation; it is installed beside the compiler's libraries.
  if("thread" IN_LIST RWKVRT_SANITIZE AND CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    get_filename_component(_rwkvrt_cxx ${CMAKE_CXX_COMPILER} REALPATH)
    get_filename_component(_rwkvrt_llvm ${_rwkvrt_cxx} DIRECTORY)
    find_library(RWKVRT_ARCHER_LIBRARY archer HINTS ${_rwkvrt_llvm}/../lib)
    if(RWKVRT_ARCHER_LIBRARY)
      target_compile_definitions(rwkvrt_sanitizer_options PRIVATE
        RWKVRT_ARCHER_LIBRARY="${RWKVRT_ARCHER_LIBRARY}")
    else()
      message(WARNING "libarcher (LLVM's OpenMP tool) not found: ThreadSanitizer will report "
                      "false races in OpenMP regions unless OMP_TOOL_LIBRARIES names it")
    endif()
  endif()
endif()

# Shared objects are linked with -Wl,--no-undefined, so that a missing symbol fails the link
# instead of the first dlopen.  Not in sanitizer builds: clang links its sanitizer runtimes (and
# libFuzzer's callbacks) into executables only, and a sanitized shared object resolves those
# symbols from the executable that loads it.
function(rwkvrt_no_undefined target)
  if(NOT RWKVRT_SANITIZE)
    target_link_options(${target} PRIVATE -Wl,--no-undefined)
  endif()
endfunction()

# Warnings for the project's own C/C++ targets.
function(rwkvrt_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:C,CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wno-unused-parameter>)
  if(RWKVRT_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:-Werror>)
  endif()
endfunction()
