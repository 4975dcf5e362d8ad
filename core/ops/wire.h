/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Names of the datapath's values (sdk/include/bpflb/lb.h) as the operations
 * surface shows them: control replies, flow events, metric labels.  One
 * table each, so that `observe`, `ct list` and /metrics never disagree on a
 * name, and so that ops/ and lb/ share them without including each other.
 */
#ifndef BPFLB_CORE_OPS_WIRE_H
#define BPFLB_CORE_OPS_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* "tcp", "udp", "icmp", "other" */
const char *wire_proto_name(uint8_t proto);
int wire_proto_parse(const char *s, uint8_t *proto);
/* enum bpflb_fwd: "local", "snat", "dsr-opt", "dsr-ipip", "none" */
const char *wire_fwd_name(uint8_t fwd);
/* enum bpflb_drop_reason: "no_backend", ...; "other" for a value without a name */
const char *wire_drop_reason_name(uint8_t reason);
/* enum bpflb_verdict: "FORWARDED", ...; parsed without regard to case */
const char *wire_verdict_name(uint8_t verdict);
int wire_verdict_parse(const char *s, uint8_t *verdict);
/* "a.b.c.d:port" (port host order; 0 prints the address alone) */
const char *wire_addrport(uint32_t addr_be, uint16_t port, char *buf, size_t len);

#endif
