// SPDX-License-Identifier: GPL-2.0-only
/* Names of the datapath's values on the wire (wire.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <bpflb/lb.h>

#include "ops/wire.h"

const char *wire_proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	default:
		return "other";
	}
}

int wire_proto_parse(const char *s, uint8_t *proto)
{
	if (!strcmp(s, "tcp"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(s, "udp"))
		*proto = IPPROTO_UDP;
	else if (!strcmp(s, "icmp"))
		*proto = IPPROTO_ICMP;
	else
		return -EINVAL;
	return 0;
}

const char *wire_fwd_name(uint8_t fwd)
{
	switch (fwd) {
	case BPFLB_FWD_LOCAL:
		return "local";
	case BPFLB_FWD_SNAT:
		return "snat";
	case BPFLB_FWD_DSR_OPT:
		return "dsr-opt";
	case BPFLB_FWD_DSR_IPIP:
		return "dsr-ipip";
	default:
		return "none";
	}
}

const char *wire_drop_reason_name(uint8_t reason)
{
	static const char *const names[BPFLB_DROP_MAX] = {
	    [BPFLB_DROP_NONE] = "none",
	    [BPFLB_DROP_NO_BACKEND] = "no_backend",
	    [BPFLB_DROP_NO_LOCAL_BACKEND] = "no_local_backend",
	    [BPFLB_DROP_SNAT_EXHAUSTED] = "snat_exhausted",
	    [BPFLB_DROP_BACKEND_MAINT] = "backend_maintenance",
	    [BPFLB_DROP_BAD_PACKET] = "bad_packet",
	    [BPFLB_DROP_CT_FULL] = "ct_full",
	    [BPFLB_DROP_FIB] = "fib",
	    [BPFLB_DROP_POLICY] = "policy",
	    [BPFLB_DROP_NO_GATEWAY] = "no_gateway",
	    [BPFLB_DROP_MTU] = "mtu",
	    [BPFLB_DROP_NAT_NO_MAPPING] = "nat_no_mapping",
	};

	return reason < BPFLB_DROP_MAX && names[reason] ? names[reason] : "other";
}

static const char *const verdict_names[] = {
    [BPFLB_VERDICT_FORWARDED] = "FORWARDED",
    [BPFLB_VERDICT_DROPPED] = "DROPPED",
    [BPFLB_VERDICT_AUDIT] = "AUDIT",
    [BPFLB_VERDICT_REJECTED] = "REJECTED",
};

const char *wire_verdict_name(uint8_t verdict)
{
	return verdict < sizeof(verdict_names) / sizeof(verdict_names[0]) && verdict_names[verdict]
		   ? verdict_names[verdict]
		   : "UNKNOWN";
}

int wire_verdict_parse(const char *s, uint8_t *verdict)
{
	for (uint8_t i = 1; i < sizeof(verdict_names) / sizeof(verdict_names[0]); i++) {
		if (verdict_names[i] && !strcasecmp(s, verdict_names[i])) {
			*verdict = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *wire_addrport(uint32_t addr_be, uint16_t port, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];
	struct in_addr in = {.s_addr = addr_be};

	inet_ntop(AF_INET, &in, a, sizeof(a));
	if (port)
		snprintf(buf, len, "%s:%u", a, port);
	else
		snprintf(buf, len, "%s", a);
	return buf;
}
