# SPDX-License-Identifier: BSD-2-Clause
# bpflb_plugin(NAME SOURCES src... [BPF bpf_src...] [LIBS lib...] [OUTPUT_DIR dir] [NOINSTALL])
#
# Builds NAME.so (no "lib" prefix, hidden visibility: the descriptor is the one
# exported symbol), embeds the skeletons of its BPF sources, puts it into
# ${CMAKE_BINARY_DIR}/plugins (the build tree's plugin_dir) and installs it into
# the plugin directory.
set(BPFLB_PLUGIN_BUILD_DIR ${CMAKE_BINARY_DIR}/plugins-out)

function(bpflb_plugin NAME)
  cmake_parse_arguments(ARG "NOINSTALL" "OUTPUT_DIR" "SOURCES;BPF;LIBS" ${ARGN})
  add_library(${NAME} MODULE ${ARG_SOURCES})
  set(outdir ${BPFLB_PLUGIN_BUILD_DIR})
  if(ARG_OUTPUT_DIR)
    set(outdir ${ARG_OUTPUT_DIR})
  endif()
  set_target_properties(${NAME} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden
                        LIBRARY_OUTPUT_DIRECTORY ${outdir})
  target_include_directories(${NAME} PRIVATE ${PROJECT_SOURCE_DIR}/sdk/include)
  foreach(src ${ARG_BPF})
    get_filename_component(base ${src} NAME_WE)
    # foo.bpf.c -> foo_bpf.skel.h, struct foo_bpf: leaves "struct foo" to the plugin.
    bpflb_bpf_skeleton(${base}_bpf ${CMAKE_CURRENT_SOURCE_DIR}/${src}
                       INCLUDES ${CMAKE_CURRENT_SOURCE_DIR}/bpf)
    target_link_libraries(${NAME} PRIVATE ${base}_bpf_skel)
  endforeach()
  target_link_libraries(${NAME} PRIVATE PkgConfig::LIBBPF ${ARG_LIBS})
  if(NOT ARG_NOINSTALL)
    install(TARGETS ${NAME} LIBRARY DESTINATION lib/bpflb/plugins)
  endif()
endfunction()
