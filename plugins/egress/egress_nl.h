/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The few rtnetlink requests the egress gateway makes, on a plain
 * NETLINK_ROUTE socket (no libnl/libmnl), and the gratuitous ARP that
 * announces a virtual IP.  All of them act in the daemon's network namespace.
 * Addresses are IPv4 in network byte order; functions return 0 or -errno.
 */
#ifndef EGRESS_NL_H
#define EGRESS_NL_H

#include <stdint.h>

/* 1 when addr is configured on ifindex (any prefix length), 0 when not. */
int egress_nl_addr_has(int ifindex, uint32_t addr);
/* Add addr/plen to ifindex; an address already there is success. */
int egress_nl_addr_add(int ifindex, uint32_t addr, uint8_t plen);
/* Remove addr/plen from ifindex; an address already gone is success. */
int egress_nl_addr_del(int ifindex, uint32_t addr, uint8_t plen);
/*
 * Have the kernel resolve (or confirm) the neighbour entry of addr on
 * ifindex now (RTM_NEWNEIGH with NTF_USE), so that bpf_fib_lookup() finds a
 * next-hop MAC when the first packet for it comes.
 */
int egress_nl_neigh_use(int ifindex, uint32_t addr);
/* Output interface of the route to addr. */
int egress_nl_route_oif(uint32_t addr, int *ifindex);
/* Send a gratuitous ARP request and reply for addr out of ifindex. */
int egress_garp(int ifindex, uint32_t addr);
/* The MTU of ifindex. */
int egress_link_mtu(int ifindex, uint32_t *mtu);

#endif
