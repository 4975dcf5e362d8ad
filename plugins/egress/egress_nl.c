// SPDX-License-Identifier: GPL-2.0-only
/*
 * rtnetlink requests and gratuitous ARP for the egress gateway (egress_nl.h).
 * One short-lived socket per request: they happen on reloads and ticks, not
 * per packet, and a socket of our own never sees another request's replies.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/ethernet.h>
#include <netpacket/packet.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "egress_nl.h"

#define NL_BUF 16384

struct nl_req {
	struct nlmsghdr nh;
	union {
		struct ifaddrmsg ifa;
		struct ndmsg ndm;
		struct rtmsg rtm;
	};
	char attrs[64];
};

static void nl_attr(struct nl_req *r, unsigned short type, const void *data, unsigned short len)
{
	struct rtattr *rta = (struct rtattr *)((char *)&r->nh + NLMSG_ALIGN(r->nh.nlmsg_len));

	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

static int nl_open(void)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

/*
 * Send r and read the answer.  For a dump, cb sees every message until
 * NLMSG_DONE; otherwise the ACK's error is returned (and cb, when given, sees
 * the reply message).  cb returns 0 to go on.
 */
static int nl_talk(struct nl_req *r, int (*cb)(const struct nlmsghdr *nh, void *arg), void *arg)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	bool dump = r->nh.nlmsg_flags & NLM_F_DUMP;
	char *buf;
	int fd, ret = 0;
	ssize_t n;

	fd = nl_open();
	if (fd < 0)
		return fd;
	buf = malloc(NL_BUF);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	r->nh.nlmsg_seq = 1;
	if (sendto(fd, r, r->nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		goto out;
	}
	for (;;) {
		struct nlmsghdr *nh;

		n = recv(fd, buf, NL_BUF, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_seq != 1)
				continue;
			if (nh->nlmsg_type == NLMSG_DONE)
				goto out;
			if (nh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nh);

				ret = e->error;
				goto out;
			}
			if (cb && !ret)
				ret = cb(nh, arg);
			if (!dump)
				goto out;
		}
	}
out:
	free(buf);
	close(fd);
	return ret;
}

/* --- addresses ----------------------------------------------------------- */

struct addr_find {
	int ifindex;
	uint32_t addr;
	bool found;
};

static int addr_cb(const struct nlmsghdr *nh, void *arg)
{
	const struct ifaddrmsg *ifa = NLMSG_DATA(nh);
	struct addr_find *f = arg;
	const struct rtattr *rta;
	int len;

	if (nh->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != AF_INET ||
	    (int)ifa->ifa_index != f->ifindex)
		return 0;
	len = IFA_PAYLOAD(nh);
	for (rta = IFA_RTA(ifa); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		if ((rta->rta_type == IFA_LOCAL || rta->rta_type == IFA_ADDRESS) &&
		    RTA_PAYLOAD(rta) == 4 && !memcmp(RTA_DATA(rta), &f->addr, 4))
			f->found = true;
	}
	return 0;
}

int egress_nl_addr_has(int ifindex, uint32_t addr)
{
	struct nl_req r = {
	    .nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)),
		   .nlmsg_type = RTM_GETADDR,
		   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
	    .ifa = {.ifa_family = AF_INET},
	};
	struct addr_find f = {.ifindex = ifindex, .addr = addr};
	int ret = nl_talk(&r, addr_cb, &f);

	return ret ? ret : f.found;
}

static int addr_change(int type, int flags, int ifindex, uint32_t addr, uint8_t plen)
{
	struct nl_req r = {
	    .nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)),
		   .nlmsg_type = type,
		   .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags},
	    .ifa = {.ifa_family = AF_INET,
		    .ifa_prefixlen = plen,
		    .ifa_scope = RT_SCOPE_UNIVERSE,
		    .ifa_index = ifindex},
	};

	nl_attr(&r, IFA_LOCAL, &addr, 4);
	nl_attr(&r, IFA_ADDRESS, &addr, 4);
	return nl_talk(&r, NULL, NULL);
}

int egress_nl_addr_add(int ifindex, uint32_t addr, uint8_t plen)
{
	int ret = addr_change(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, addr, plen);

	return ret == -EEXIST ? 0 : ret;
}

int egress_nl_addr_del(int ifindex, uint32_t addr, uint8_t plen)
{
	int ret = addr_change(RTM_DELADDR, 0, ifindex, addr, plen);

	return ret == -EADDRNOTAVAIL || ret == -ENOENT || ret == -ENODEV ? 0 : ret;
}

/* --- neighbours and routes ------------------------------------------------ */

int egress_nl_neigh_use(int ifindex, uint32_t addr)
{
	struct nl_req r = {
	    .nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)),
		   .nlmsg_type = RTM_NEWNEIGH,
		   .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE},
	    .ndm = {.ndm_family = AF_INET,
		    .ndm_ifindex = ifindex,
		    .ndm_state = NUD_NONE,
		    .ndm_flags = NTF_USE},
	};

	nl_attr(&r, NDA_DST, &addr, 4);
	return nl_talk(&r, NULL, NULL);
}

static int route_cb(const struct nlmsghdr *nh, void *arg)
{
	const struct rtmsg *rtm = NLMSG_DATA(nh);
	const struct rtattr *rta;
	int len, *oif = arg;

	if (nh->nlmsg_type != RTM_NEWROUTE)
		return 0;
	len = RTM_PAYLOAD(nh);
	for (rta = RTM_RTA(rtm); RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type == RTA_OIF && RTA_PAYLOAD(rta) == 4)
			memcpy(oif, RTA_DATA(rta), 4);
	return 0;
}

int egress_nl_route_oif(uint32_t addr, int *ifindex)
{
	struct nl_req r = {
	    .nh = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)),
		   .nlmsg_type = RTM_GETROUTE,
		   .nlmsg_flags = NLM_F_REQUEST},
	    .rtm = {.rtm_family = AF_INET, .rtm_dst_len = 32},
	};
	int oif = 0, ret;

	nl_attr(&r, RTA_DST, &addr, 4);
	ret = nl_talk(&r, route_cb, &oif);
	if (ret)
		return ret;
	if (!oif)
		return -ENETUNREACH;
	*ifindex = oif;
	return 0;
}

/* --- links and ARP ----------------------------------------------------------- */

static int link_ioctl(int ifindex, unsigned long req, struct ifreq *ifr)
{
	int fd, ret = 0;

	memset(ifr, 0, sizeof(*ifr));
	if (!if_indextoname(ifindex, ifr->ifr_name))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, req, ifr))
		ret = -errno;
	close(fd);
	return ret;
}

int egress_link_mtu(int ifindex, uint32_t *mtu)
{
	struct ifreq ifr;
	int ret = link_ioctl(ifindex, SIOCGIFMTU, &ifr);

	if (!ret)
		*mtu = ifr.ifr_mtu;
	return ret;
}

struct arp_pkt {
	struct arphdr h;
	uint8_t sha[ETH_ALEN];
	uint8_t spa[4];
	uint8_t tha[ETH_ALEN];
	uint8_t tpa[4];
} __attribute__((packed));

/*
 * Both forms of gratuitous ARP (RFC 5227 announcement, and the reply that
 * some stacks only accept): sender and target address are the virtual IP, so
 * every neighbour that knows the address learns the new MAC.
 */
int egress_garp(int ifindex, uint32_t addr)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
				  .sll_protocol = htons(ETH_P_ARP),
				  .sll_ifindex = ifindex,
				  .sll_halen = ETH_ALEN};
	struct arp_pkt p = {0};
	struct ifreq ifr;
	int fd, ret;

	ret = link_ioctl(ifindex, SIOCGIFHWADDR, &ifr);
	if (ret)
		return ret;
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		return -EOPNOTSUPP;
	memset(sll.sll_addr, 0xff, ETH_ALEN);
	p.h.ar_hrd = htons(ARPHRD_ETHER);
	p.h.ar_pro = htons(ETH_P_IP);
	p.h.ar_hln = ETH_ALEN;
	p.h.ar_pln = 4;
	memcpy(p.sha, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	memcpy(p.spa, &addr, 4);
	memcpy(p.tpa, &addr, 4);

	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
	if (fd < 0)
		return -errno;
	p.h.ar_op = htons(ARPOP_REQUEST);
	if (sendto(fd, &p, sizeof(p), 0, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		ret = -errno;
		goto out;
	}
	p.h.ar_op = htons(ARPOP_REPLY);
	memset(p.tha, 0xff, ETH_ALEN);
	if (sendto(fd, &p, sizeof(p), 0, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		ret = -errno;
out:
	close(fd);
	return ret;
}
