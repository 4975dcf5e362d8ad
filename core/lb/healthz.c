// SPDX-License-Identifier: GPL-2.0-only
/*
 * Health check node port servers (see healthz.h): one HTTP server (ops/http.c,
 * libmicrohttpd on the loop) per externalTrafficPolicy=Local service with a
 * health_check_node_port.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/healthz.h"
#include "ops/http.h"

struct hz_listener {
	struct bpflb_http_server *srv;
	struct hz_listener *next;
	uint32_t addr;
	uint16_t port;
	bool keep; /* scratch of bpflb_healthz_update */
	char ns[128];
	char name[128];
	uint32_t local;
};

struct bpflb_healthz {
	uv_loop_t *loop;
	struct hz_listener *listeners;
};

int bpflb_healthz_new(uv_loop_t *loop, struct bpflb_healthz **out)
{
	struct bpflb_healthz *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->loop = loop;
	*out = h;
	return 0;
}

size_t bpflb_healthz_count(const struct bpflb_healthz *h)
{
	size_t n = 0;

	for (const struct hz_listener *l = h ? h->listeners : NULL; l; l = l->next)
		n++;
	return n;
}

static size_t json_escape(char *out, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return o;
}

/* Any path, as kube-proxy: the probe's URL is the load balancer's choice. */
static void hz_request(void *ctx, const char *path, struct bpflb_http_answer *a)
{
	const struct hz_listener *l = ctx;
	char ns[260], name[260];
	int n;

	json_escape(ns, sizeof(ns), l->ns);
	json_escape(name, sizeof(name), l->name);
	n = asprintf(&a->body,
		     "{\"service\":{\"namespace\":\"%s\",\"name\":\"%s\"},"
		     "\"localEndpoints\":%u,\"serviceProxyHealthy\":true}",
		     ns, name, l->local);
	if (n < 0) {
		a->body = NULL;
		a->status = 500;
		return;
	}
	a->len = (size_t)n;
	a->status = l->local ? 200 : 503;
	a->ctype = "application/json";
	a->nosniff = true;
}

/* Unlink l from h->listeners first. */
static void listener_close(struct hz_listener *l)
{
	bpflb_http_stop(l->srv);
	free(l);
}

static void listener_set(struct hz_listener *l, const struct bpflb_healthz_svc *v)
{
	snprintf(l->ns, sizeof(l->ns), "%s", v->ns ? v->ns : "default");
	snprintf(l->name, sizeof(l->name), "%s", v->name ? v->name : "");
	l->local = v->local_endpoints;
}

static int listener_open(struct bpflb_healthz *h, const struct bpflb_healthz_svc *v,
			 struct hz_listener **out, struct bpflb_err *err)
{
	char abuf[INET_ADDRSTRLEN];
	struct hz_listener *l;
	int ret;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->addr = v->addr;
	l->port = v->port;
	listener_set(l, v);
	ret = bpflb_http_start(h->loop, v->addr, v->port, hz_request, l, &l->srv);
	if (ret) {
		free(l);
		inet_ntop(AF_INET, &v->addr, abuf, sizeof(abuf));
		bpflb_err_set(err, "cannot serve the health check of service %s/%s on %s:%u: %s",
			      v->ns ? v->ns : "default", v->name ? v->name : "", abuf, v->port,
			      strerror(-ret));
		return ret;
	}
	*out = l;
	return 0;
}

int bpflb_healthz_update(struct bpflb_healthz *h, const struct bpflb_healthz_svc *svc, size_t n,
			 struct bpflb_err *err)
{
	struct hz_listener *l, **pl, *fresh = NULL;
	int ret;

	for (l = h->listeners; l; l = l->next)
		l->keep = false;

	/* 1. bind what is new, keeping it aside until all binds succeeded */
	for (size_t i = 0; i < n; i++) {
		struct hz_listener *found = NULL;

		for (l = h->listeners; l; l = l->next)
			if (l->addr == svc[i].addr && l->port == svc[i].port)
				found = l;
		for (l = fresh; l; l = l->next)
			if (l->addr == svc[i].addr && l->port == svc[i].port)
				found = l;
		if (found) {
			found->keep = true;
			continue;
		}
		ret = listener_open(h, &svc[i], &l, err);
		if (ret)
			goto rollback;
		l->keep = true;
		l->next = fresh;
		fresh = l;
	}

	/* 2. commit: refresh answers, close what went away, adopt the new */
	for (size_t i = 0; i < n; i++)
		for (l = h->listeners; l; l = l->next)
			if (l->addr == svc[i].addr && l->port == svc[i].port)
				listener_set(l, &svc[i]);
	for (pl = &h->listeners; (l = *pl);) {
		if (l->keep) {
			pl = &l->next;
			continue;
		}
		*pl = l->next;
		listener_close(l);
	}
	while ((l = fresh)) {
		fresh = l->next;
		l->next = h->listeners;
		h->listeners = l;
	}
	return 0;

rollback:
	while ((l = fresh)) {
		fresh = l->next;
		listener_close(l);
	}
	return ret;
}

void bpflb_healthz_free(struct bpflb_healthz *h)
{
	struct hz_listener *l;

	if (!h)
		return;
	while ((l = h->listeners)) {
		h->listeners = l->next;
		listener_close(l);
	}
	free(h);
}
