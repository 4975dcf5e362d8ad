// SPDX-License-Identifier: GPL-2.0-only
/*
 * The sections the core owns: [daemon], [node], [cluster-node NAME] and [endpoint NAME].
 * Plugins declare theirs in their descriptors; the engine (config.c) checks
 * the file against all of them at once.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"
#include "ops/connlimit.h"
#include "ops/proxyhealth.h"

#define CORE_STR_(x) #x
#define CORE_STR(x)  CORE_STR_(x)

/* IFNAMSIZ - 1: the kernel's limit on an interface name. */
#define CORE_IFNAME_MAX 15

const char *const bpflb_log_levels[] = {"err", "warning", "notice", "info", "debug", NULL};

static const struct bpflb_cfg_key daemon_keys[] = {
    /* Modes are plugins: the daemon checks the name against the loaded ones. */
    {.name = "mode",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, mode),
     .type = BPFLB_CFG_STRING,
     .def = BPFLB_DEFAULT_MODE,
     .help = "load-balancing mode: the name of a mode plugin in plugin_dir, or none to run "
	     "without one"},
    {.name = "features",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, features),
     .type = BPFLB_CFG_LIST,
     .def = "",
     .help = "feature plugins to enable beside the mode, e.g. \"policy egress\""},
    {.name = "plugin_dir",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, plugin_dir),
     .type = BPFLB_CFG_PATH,
     .def = BPFLB_DEFAULT_PLUGIN_DIR,
     .help = "directory the plugins are loaded from"},
    {.name = "bpffs_root",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, bpffs_root),
     .type = BPFLB_CFG_PATH,
     .def = "/sys/fs/bpf/bpflb",
     .help = "bpffs directory under which this instance pins its maps and programs"},
    {.name = "control_socket",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, control_socket),
     .type = BPFLB_CFG_PATH,
     .def = "/run/bpflb/bpflbd.sock",
     .help = "unix socket bpflbctl talks to"},
    {.name = "control_group",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, control_group),
     .type = BPFLB_CFG_STRING,
     .help = "group allowed to use the control socket (mode 0660); default: root only (0600)"},
    {.name = "metrics_listen",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, metrics_listen),
     .type = BPFLB_CFG_STRING,
     .help = "ADDR:PORT of the Prometheus metrics endpoint, e.g. 127.0.0.1:9962; "
	     "default: none"},
    {.name = "healthz_listen",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, healthz_listen),
     .type = BPFLB_CFG_STRING,
     .def = PROXYHEALTH_DEF_LISTEN,
     .help = "ADDR:PORT of kube-proxy's /healthz and /livez (what cloud load balancers "
	     "probe), or off"},
    {.name = "healthz_max_sync_age",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, healthz_max_sync_age),
     .type = BPFLB_CFG_DURATION,
     .def = "0",
     .min = 0,
     .max = 86400,
     .help = "/healthz answers 503 when the last successful reconcile is older; 0: twice "
	     "reconcile_interval (kube-proxy's rule), no limit when that is 0"},
    {.name = "max_connections",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, max_connections),
     .type = BPFLB_CFG_U32,
     .def = CORE_STR(CONNLIMIT_DEF_TOTAL),
     .min = 1,
     .max = 1000000,
     .help = "connections the metrics, /healthz and health check ports accept in all; "
	     "lowered to fit RLIMIT_NOFILE"},
    {.name = "max_connections_per_listener",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, max_connections_per_listener),
     .type = BPFLB_CFG_U32,
     .def = CORE_STR(CONNLIMIT_DEF_PER_LISTENER),
     .min = 1,
     .max = 1000000,
     .help = "connections one listener (control socket, metrics, one health check port) "
	     "accepts; more wait in the kernel's backlog"},
    {.name = "client_timeout",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, client_timeout),
     .type = BPFLB_CFG_DURATION,
     .def = CORE_STR(CONNLIMIT_DEF_TIMEOUT_S),
     .min = 1,
     .max = 3600,
     .help = "a connection that completes no request (or leaves its answers unread) this "
	     "long is closed"},
    {.name = "devices",
     .type = BPFLB_CFG_LIST,
     .flags = BPFLB_CFG_F_REQUIRED | BPFLB_CFG_AT(struct bpflb_daemon_conf, devices),
     .help = "network interfaces to attach to, e.g. \"eth0 eth1\""},
    {.name = "tc_priority",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, tc_priority),
     .type = BPFLB_CFG_U32,
     .def = "1",
     .min = 1,
     .max = 65535,
     .help = "tc filter priority of the entry programs"},
    {.name = "tc_handle",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, tc_handle),
     .type = BPFLB_CFG_U32,
     .def = "0xb1b",
     .min = 1,
     .max = 65535,
     .help = "tc filter handle of the entry programs"},
    {.name = "log_level",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, log_level),
     .type = BPFLB_CFG_ENUM,
     .def = "info",
     .choices = bpflb_log_levels,
     .help = "least severe message that is logged"},
    {.name = "tick_interval",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, tick_interval),
     .type = BPFLB_CFG_DURATION,
     .def = "5",
     .min = 1,
     .max = 3600,
     .help = "period of the plugins' housekeeping (conntrack GC, ...)"},
    /* core/state/ (overlay, reconcile, drift check) */
    {.name = "state_dir",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, state_dir),
     .type = BPFLB_CFG_PATH,
     .def = "/var/lib/bpflb",
     .help = "directory of the daemon's state file (overlay.json: the overlay of control "
	     "socket edits, kept across restarts); root's, not group/world writable"},
    {.name = "reconcile_interval",
     .flags = BPFLB_CFG_AT(struct bpflb_daemon_conf, reconcile_interval),
     .type = BPFLB_CFG_DURATION,
     .def = "10",
     .min = 0,
     .max = 3600,
     .help = "period of the drift check, which re-reads the pinned service maps and repairs "
	     "what differs from the applied state; 0 disables it"},
    BPFLB_CFG_KEYS_END(struct bpflb_daemon_conf)};

static const struct bpflb_cfg_key node_keys[] = {
    {.name = "name",
     .type = BPFLB_CFG_STRING,
     .flags = BPFLB_CFG_F_REQUIRED | BPFLB_CFG_AT(struct bpflb_node_conf, name),
     .help = "this node's name, as the cluster knows it"},
    {.name = "address",
     .type = BPFLB_CFG_IPV4,
     .flags = BPFLB_CFG_F_REQUIRED | BPFLB_CFG_AT(struct bpflb_node_conf, address),
     .help = "the node's InternalIP"},
    {.name = "external_addresses",
     .flags = BPFLB_CFG_AT(struct bpflb_node_conf, external_addresses),
     .type = BPFLB_CFG_IPV4_LIST,
     .def = "",
     .help = "more addresses of this node that answer NodePorts"},
    {.name = "labels",
     .flags = BPFLB_CFG_AT(struct bpflb_node_conf, labels),
     .type = BPFLB_CFG_LIST,
     .def = "",
     .help = "key=value words, e.g. \"zone=eu-1 rack=r7\""},
    BPFLB_CFG_KEYS_END(struct bpflb_node_conf)};

static const struct bpflb_cfg_key cluster_node_keys[] = {
    {.name = "address",
     .type = BPFLB_CFG_IPV4,
     .flags = BPFLB_CFG_F_REQUIRED | BPFLB_CFG_AT(struct bpflb_cluster_node_conf, address),
     .help = "that node's InternalIP"},
    {.name = "external_addresses",
     .flags = BPFLB_CFG_AT(struct bpflb_cluster_node_conf, external_addresses),
     .type = BPFLB_CFG_IPV4_LIST,
     .def = "",
     .help = "that node's other addresses (a hostnet backend may listen on one)"},
    {.name = "labels",
     .flags = BPFLB_CFG_AT(struct bpflb_cluster_node_conf, labels),
     .type = BPFLB_CFG_LIST,
     .def = "",
     .help = "key=value words, e.g. \"zone=eu-1 rack=r7\""},
    BPFLB_CFG_KEYS_END(struct bpflb_cluster_node_conf)};

/*
 * Workloads (pods) of the cluster, one section each: [endpoint web-1].  Core-owned
 * so that every feature plugin reads the same inventory: network policy selects
 * them by labels, the egress gateway by labels and node.
 */
static const struct bpflb_cfg_key endpoint_keys[] = {
    {.name = "address",
     .type = BPFLB_CFG_IPV4,
     .flags = BPFLB_CFG_F_REQUIRED | BPFLB_CFG_AT(struct bpflb_endpoint_conf, address),
     .help = "the workload's (pod's) IPv4 address"},
    {.name = "labels",
     .flags = BPFLB_CFG_AT(struct bpflb_endpoint_conf, labels),
     .type = BPFLB_CFG_LIST,
     .def = "",
     .help = "key=value words, e.g. \"app=web io.kubernetes.pod.namespace=shop\""},
    {.name = "node",
     .type = BPFLB_CFG_STRING,
     .flags = BPFLB_CFG_F_REQUIRED | BPFLB_CFG_AT(struct bpflb_endpoint_conf, node),
     .help = "the node it runs on: the [node] name or a [cluster-node NAME]"},
    BPFLB_CFG_KEYS_END(struct bpflb_endpoint_conf)};

static bool core_ifname_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= CORE_IFNAME_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* ADDR:PORT with an IPv4 address and a port 1-65535. */
static bool listen_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	char addr[BPFLB_CFG_WORD_MAX];
	uint32_t a, port;

	return colon && (size_t)(colon - s) < sizeof(addr) &&
	       (snprintf(addr, sizeof(addr), "%.*s", (int)(colon - s), s),
		!bpflb_parse_ipv4(addr, &a)) &&
	       !bpflb_parse_u32(colon + 1, 1, 65535, &port);
}

static int daemon_check(const struct bpflb_cfg_section *sec, struct bpflb_err *err)
{
	const struct bpflb_daemon_conf *dc = bpflb_cfg_conf(sec);
	uint32_t i, j;

	if (dc->metrics_listen && !listen_ok(dc->metrics_listen))
		return bpflb_cfg_error(err, sec, "metrics_listen", 0,
				       "expected ADDR:PORT with an IPv4 address and a "
				       "port 1-65535, e.g. 127.0.0.1:9962");
	if (strcmp(dc->healthz_listen, "off") && !listen_ok(dc->healthz_listen))
		return bpflb_cfg_error(err, sec, "healthz_listen", 0,
				       "expected ADDR:PORT with an IPv4 address and a "
				       "port 1-65535, e.g. " PROXYHEALTH_DEF_LISTEN ", or off");
	for (i = 0; i < dc->devices.n; i++) {
		const char *dev = dc->devices.v[i];

		if (!core_ifname_ok(dev))
			return bpflb_cfg_error(err, sec, "devices", 0,
					       "\"%s\" is not an interface name; expected names "
					       "of 1 to %d characters from A-Z a-z 0-9 . _ -",
					       dev, CORE_IFNAME_MAX);
		/* Attaching twice to one device would fail half way through. */
		for (j = 0; j < i; j++)
			if (!strcmp(dev, dc->devices.v[j]))
				return bpflb_cfg_error(err, sec, "devices", 0,
						       "%s is listed twice; expected each device "
						       "once",
						       dev);
	}
	return 0;
}

static int labels_check(const struct bpflb_cfg_section *sec, const struct bpflb_cfg_words *labels,
			struct bpflb_err *err)
{
	uint32_t i;

	for (i = 0; i < labels->n; i++)
		if (labels->v[i][0] == '=' || !strchr(labels->v[i], '='))
			return bpflb_cfg_error(err, sec, "labels", 0,
					       "\"%s\" is not a label; expected key=value words "
					       "such as zone=eu-1",
					       labels->v[i]);
	return 0;
}

static int node_check(const struct bpflb_cfg_section *sec, struct bpflb_err *err)
{
	return labels_check(sec, &((const struct bpflb_node_conf *)bpflb_cfg_conf(sec))->labels,
			    err);
}

static int cluster_node_check(const struct bpflb_cfg_section *sec, struct bpflb_err *err)
{
	return labels_check(
	    sec, &((const struct bpflb_cluster_node_conf *)bpflb_cfg_conf(sec))->labels, err);
}

static int endpoint_check(const struct bpflb_cfg_section *sec, struct bpflb_err *err)
{
	return labels_check(sec, &((const struct bpflb_endpoint_conf *)bpflb_cfg_conf(sec))->labels,
			    err);
}

static const struct bpflb_cfg_section_def daemon_section = {
    .name = "daemon",
    .required = true,
    .keys = daemon_keys,
    .check = daemon_check,
};

static const struct bpflb_cfg_section_def node_section = {
    .name = "node",
    .required = true,
    .keys = node_keys,
    .check = node_check,
};

/* The other nodes of the cluster, one section each: [cluster-node node2]. */
static const struct bpflb_cfg_section_def cluster_node_section = {
    .name = "cluster-node",
    .named = true,
    .keys = cluster_node_keys,
    .check = cluster_node_check,
};

static const struct bpflb_cfg_section_def endpoint_section = {
    .name = "endpoint",
    .named = true,
    .keys = endpoint_keys,
    .check = endpoint_check,
};

const struct bpflb_cfg_section_def *const bpflb_core_sections[] = {
    &daemon_section,
    &node_section,
    &cluster_node_section,
    &endpoint_section,
    NULL,
};
