// SPDX-License-Identifier: GPL-2.0-only
/* bpflbd: command line. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/connlimit.h"
#include "daemon.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bpflbd --config FILE [--check-config | --cleanup] [--log-format F]\n"
		"       bpflbd --version | --help\n"
		"\n"
		"eBPF load balancer for NodePort, LoadBalancer and external-IP services.\n"
		"\n"
		"  -c, --config FILE   configuration (INI), e.g. %s/bpflb.ini\n"
		"  -t, --check-config  validate FILE with the installed plugins and exit:\n"
		"                      0 when valid, 1 with FILE:LINE: message otherwise\n"
		"      --cleanup       remove this instance's tc hooks and the pins it made\n"
		"                      under bpffs_root (resets conntrack), then exit\n"
		"      --log-format F  auto (default: journald's native protocol when stderr\n"
		"                      is journald's, text otherwise), text (RFC 3339 time,\n"
		"                      level, message) or json (one object per line)\n"
		"  -V, --version       print the version and the plugin ABI version\n"
		"  -h, --help          this text\n"
		"\n"
		"Signals: SIGHUP reloads FILE (a bad file keeps the running configuration),\n"
		"SIGTERM/SIGINT stop and leave the datapath forwarding.\n",
		BPFLB_SYSCONF_DIR);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 't'},
	    {"cleanup", no_argument, NULL, 'C'},      {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},	      {"log-format", required_argument, NULL, 'L'},
	    {0},
	};
	const char *config = NULL;
	bool check = false, cleanup = false;
	struct bpflb_daemon d;
	struct bpflb_err err = {""};
	int c, ret, format = LOG_FORMAT_AUTO;

	/*
	 * A client that hangs up before its answer is written must cost a
	 * write error (EPIPE, handled as a closed client), not the process.
	 */
	signal(SIGPIPE, SIG_IGN);
	/* Listeners and reloads share one descriptor budget (connlimit.h). */
	connlimit_raise_nofile();

	while ((c = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'C':
			cleanup = true;
			break;
		case 'L':
			format = log_format_from_name(optarg);
			if (format < 0) {
				fprintf(stderr, "bpflbd: --log-format %s: expected auto, text or json\n",
					optarg);
				return 2;
			}
			break;
		case 'V':
			printf("bpflbd %s (plugin ABI %u)\n", BPFLB_VERSION, BPFLB_ABI_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !config) {
		fprintf(stderr, "bpflbd: %s\n",
			config ? "unexpected argument" : "--config FILE is required");
		usage(stderr);
		return 2;
	}
	log_init(LOG_INFO, (enum log_format)format);
	/*
	 * Errors go through the logger, with their priority and the
	 * FILE:LINE of the config as fields: under systemd an ExecStartPre=
	 * --check-config failure is what journalctl -p err must show.
	 */
	if (check) {
		ret = daemon_check_config(config, &err);
		if (ret) {
			log_err_msg(LOG_ERR, NULL, err.msg);
			return 1;
		}
		pr_notice("%s: configuration is valid", config);
		return 0;
	}
	if (cleanup) {
		ret = daemon_cleanup(config, &err);
		if (ret) {
			log_err_msg(LOG_ERR, "cleanup", err.msg);
			return 1;
		}
		return 0;
	}
	ret = daemon_start(&d, config, &err);
	if (ret) {
		log_err_msg(LOG_ERR, NULL, err.msg);
		daemon_stop(&d);
		return 1;
	}
	daemon_run(&d);
	daemon_stop(&d);
	return 0;
}
