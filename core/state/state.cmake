# SPDX-License-Identifier: BSD-2-Clause
# Desired state and the one reconcile loop: the overlay of control-socket edits
# and its state file, the bpffs_root lock, the reconcile entry point and the
# drift check.  Included by core/CMakeLists.txt into the static library bpflb_core.
set(BPFLB_STATE_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/lock.c
    ${CMAKE_CURRENT_LIST_DIR}/overlay.c
    ${CMAKE_CURRENT_LIST_DIR}/reconcile.c
    ${CMAKE_CURRENT_LIST_DIR}/state_cmds.c)
