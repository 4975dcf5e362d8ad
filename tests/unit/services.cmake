# SPDX-License-Identifier: BSD-2-Clause
# Unit tests of the service state: Maglev, [lb]/[service] parsing and apply on
# pinned maps, conntrack GC, health check node ports.  The map tests need root
# and BPF; without them they say so and pass.  test_plan: golden plans, no root.
foreach(t maglev services plan ct_gc healthz)
  add_executable(test_${t} ${CMAKE_CURRENT_LIST_DIR}/test_${t}.c)
  target_include_directories(test_${t} PRIVATE
    ${PROJECT_SOURCE_DIR}/core
    ${PROJECT_SOURCE_DIR}/sdk/include)
  target_link_libraries(test_${t} PRIVATE bpflb_core PkgConfig::CHECK PkgConfig::LIBBPF
    PkgConfig::LIBUV)
  add_test(NAME ${t} COMMAND test_${t})
  set_tests_properties(${t} PROPERTIES TIMEOUT 120)
endforeach()
target_link_libraries(test_healthz PRIVATE pthread)
