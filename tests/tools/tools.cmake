# SPDX-License-Identifier: BSD-2-Clause
# End-to-end test tools (included from tests/CMakeLists.txt):
#   peerd - TCP/UDP backend that answers with "NAME peer local" and echoes TCP
#   peerc - client: tcp/udp probes, byte-verified TCP streams, ICMP ping
# Both are plain C without dependencies and land in ${CMAKE_BINARY_DIR}/tests/tools,
# which is what tests/lib/cluster.sh looks for (BPFLB_BUILD=<build dir>).
foreach(_tool peerd peerc)
  add_executable(${_tool} ${CMAKE_CURRENT_LIST_DIR}/${_tool}.c)
  target_compile_options(${_tool} PRIVATE -Wall -Wextra)
  set_target_properties(${_tool} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/tools)
endforeach()
set(BPFLB_TEST_TOOLS_DIR ${CMAKE_BINARY_DIR}/tests/tools)
