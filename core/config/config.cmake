# SPDX-License-Identifier: BSD-2-Clause
# The configuration engine and the core's own sections, for the bpflb_core
# library: include() this from core/CMakeLists.txt and add
# ${BPFLB_CONFIG_SOURCES} to bpflb_core, which must link PkgConfig::INIH.
set(BPFLB_CONFIG_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/config.c
  ${CMAKE_CURRENT_LIST_DIR}/config_core.c)
