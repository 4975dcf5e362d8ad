# SPDX-License-Identifier: BSD-2-Clause
# bpflb_bpf_skeleton(NAME SRC [INCLUDES dir...] [DEPENDS file...])
#
# Compiles SRC with clang -target bpf and generates NAME.skel.h with
# `bpftool gen skeleton`.  Defines the INTERFACE target NAME_skel that carries
# the include directory of the skeleton, so a plugin that links it embeds the
# BPF object in its own .so and stays one file to drop into plugin_dir.
find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
execute_process(COMMAND uname -m OUTPUT_VARIABLE BPF_UNAME_M OUTPUT_STRIP_TRAILING_WHITESPACE)
if(BPF_UNAME_M STREQUAL "x86_64")
  set(BPF_TARGET_ARCH x86)
elseif(BPF_UNAME_M STREQUAL "aarch64")
  set(BPF_TARGET_ARCH arm64)
else()
  set(BPF_TARGET_ARCH ${BPF_UNAME_M})
endif()
set(BPF_MULTIARCH_INCLUDE /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})

function(bpflb_bpf_skeleton NAME SRC)
  cmake_parse_arguments(ARG "" "" "INCLUDES;DEPENDS" ${ARGN})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${NAME}.bpf.o)
  set(skel_dir ${CMAKE_CURRENT_BINARY_DIR}/skel)
  set(skel ${skel_dir}/${NAME}.skel.h)
  set(incs -I${PROJECT_SOURCE_DIR}/sdk/include -I${PROJECT_SOURCE_DIR}/sdk/bpf)
  foreach(d ${ARG_INCLUDES})
    list(APPEND incs -I${d})
  endforeach()
  file(GLOB sdk_bpf_headers ${PROJECT_SOURCE_DIR}/sdk/bpf/bpflb/*.h
       ${PROJECT_SOURCE_DIR}/sdk/include/bpflb/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -Wall -Wno-unused-function -Werror
            -I${BPF_MULTIARCH_INCLUDE} ${incs} -c ${SRC} -o ${obj}
    DEPENDS ${SRC} ${sdk_bpf_headers} ${ARG_DEPENDS}
    IMPLICIT_DEPENDS C ${SRC}
    COMMENT "BPF ${NAME}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${skel_dir}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${NAME} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${NAME}"
    VERBATIM)
  add_custom_target(${NAME}_skel_gen DEPENDS ${skel})
  add_library(${NAME}_skel INTERFACE)
  target_include_directories(${NAME}_skel INTERFACE ${skel_dir})
  add_dependencies(${NAME}_skel ${NAME}_skel_gen)
  set(${NAME}_BPF_OBJECT ${obj} PARENT_SCOPE)
endfunction()
