# SPDX-License-Identifier: BSD-2-Clause
# Unit tests of the configuration engine, with the corpus of good and broken
# files under tests/configs.
add_executable(test_config ${CMAKE_CURRENT_LIST_DIR}/test_config.c)
target_include_directories(test_config PRIVATE
  ${PROJECT_SOURCE_DIR}/core
  ${PROJECT_SOURCE_DIR}/sdk/include)
target_compile_definitions(test_config PRIVATE
  CONFIG_CORPUS_DIR="${PROJECT_SOURCE_DIR}/tests/configs")
target_link_libraries(test_config PRIVATE bpflb_core PkgConfig::CHECK)
add_test(NAME config COMMAND test_config)
