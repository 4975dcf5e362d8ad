# SPDX-License-Identifier: BSD-2-Clause
# Service state: [lb]/[service] sections, desired state, the plan (diff +
# commit) of the maps, Maglev, conntrack GC and its snapshots, health check node
# ports, and their control commands and metrics (services_ops.h).  Included by
# core/CMakeLists.txt into
# the static library bpflb_core.
set(BPFLB_SERVICES_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/plan.c
    ${CMAKE_CURRENT_LIST_DIR}/services.c
    ${CMAKE_CURRENT_LIST_DIR}/services_config.c
    ${CMAKE_CURRENT_LIST_DIR}/services_change.c
    ${CMAKE_CURRENT_LIST_DIR}/ct_gc.c
    ${CMAKE_CURRENT_LIST_DIR}/maglev.c
    ${CMAKE_CURRENT_LIST_DIR}/healthz.c
    ${CMAKE_CURRENT_LIST_DIR}/ct_snapshot.c
    ${CMAKE_CURRENT_LIST_DIR}/services_query.c
    ${CMAKE_CURRENT_LIST_DIR}/services_ctl.c
    ${CMAKE_CURRENT_LIST_DIR}/services_metrics.c)
