# SPDX-License-Identifier: BSD-2-Clause
# The operations surface: control socket, metrics, flow events, the HTTP
# server they share, connection caps of the listeners, the wire names of the
# datapath's values.  Registries only: the commands and metrics are their
# owners' (core/daemon_ops.c wires them); nothing here includes lb/, state/
# or daemon.h (scripts/check-layout.sh).  Included by core/CMakeLists.txt into
# the static library bpflb_core.
set(BPFLB_OPS_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/control.c
    ${CMAKE_CURRENT_LIST_DIR}/metrics.c
    ${CMAKE_CURRENT_LIST_DIR}/flows.c
    ${CMAKE_CURRENT_LIST_DIR}/http.c
    ${CMAKE_CURRENT_LIST_DIR}/proxyhealth.c
    ${CMAKE_CURRENT_LIST_DIR}/connlimit.c
    ${CMAKE_CURRENT_LIST_DIR}/wire.c)
