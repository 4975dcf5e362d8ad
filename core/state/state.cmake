# SPDX-License-Identifier: BSD-2-Clause
# What the daemon keeps of its desired state beside the source: the overlay of
# control-socket edits and its state file, and the bpffs_root lock.  The
# reconcile entry point that uses them is core/reconcile.c.  Included by
# core/CMakeLists.txt into the static library bpflb_core.
set(BPFLB_STATE_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/lock.c
    ${CMAKE_CURRENT_LIST_DIR}/overlay.c)
