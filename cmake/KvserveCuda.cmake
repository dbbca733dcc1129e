# Shared by the folders that compile CUDA sources (kernels/, engine/runtime/cuda/).

# The project's GCC warning and ISA options (-Wall, -march=...) are directory properties that nvcc
# rejects: in the calling folder they reach C++ sources only. A macro, so that the C++20 setting
# below lands in the caller's scope: CMake 3.25 does not know nvcc's C++20 flag (4.x does).
macro(kvserve_cuda_directory)
  get_directory_property(_kvserve_host_options COMPILE_OPTIONS)
  list(TRANSFORM _kvserve_host_options REPLACE "," "$<COMMA>")
  list(TRANSFORM _kvserve_host_options PREPEND "$<$<COMPILE_LANGUAGE:CXX>:")
  list(TRANSFORM _kvserve_host_options APPEND ">")
  set_directory_properties(PROPERTIES COMPILE_OPTIONS "${_kvserve_host_options}")
  if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION -std=c++20)
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION -std=c++20)
    list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
  endif()
endmacro()

# C++20 for `target`'s CUDA sources and nvcc's equivalents of the project's warnings (host code
# through -Xcompiler; errors too under KVSERVE_WERROR).
function(kvserve_cuda_target target)
  set_target_properties(${target} PROPERTIES CUDA_STANDARD 20 CUDA_STANDARD_REQUIRED ON
                                             CUDA_EXTENSIONS OFF)
  set(warnings -Wall -Wextra -Wno-unused-parameter)
  if(KVSERVE_WERROR)
    list(APPEND warnings -Werror)
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:SHELL:-Werror all-warnings>")
  endif()
  list(JOIN warnings "$<COMMA>" warnings)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${warnings}>)
endfunction()
