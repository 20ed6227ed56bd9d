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
endif()

# Warnings for the project's own C/C++ targets.
function(rwkvrt_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:C,CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wno-unused-parameter>)
  if(RWKVRT_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:-Werror>)
  endif()
endfunction()
