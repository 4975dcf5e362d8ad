// SPDX-License-Identifier: GPL-2.0-only
/*
 * CiliumClusterwideNetworkPolicy files -> struct pol_set, with libyaml's
 * document API.
 *
 * The walk follows the schema: every mapping key is looked up in the fields of
 * the object it belongs to, and anything else is an error that names the file,
 * the line (libyaml's marks) and the field's path, e.g.
 *
 *   /etc/bpflb/policies/ssh.yaml:14: spec.ingress[0].toPorts[0].rules: L7 rules
 *   are not supported (bpflb has no proxy); remove them or use an L4 rule
 *
 * Nothing is skipped silently: a field Cilium knows but bpflb does not enforce
 * is refused with the reason, so that a policy never means less here than it
 * says.  Accepted documents: kind CiliumClusterwideNetworkPolicy (apiVersion
 * cilium.io/v2), and kind List or CiliumClusterwideNetworkPolicyList holding
 * such objects in items; several documents per file ("---").  metadata.labels
 * and annotations other than policy.bpflb.io/audit-mode are informational and
 * accepted; spec.description too.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "policy_model.h"

/* Paths and messages are cut at their buffer's size on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define PATH_LEN 256

struct yp {
	const char *file;
	yaml_document_t *doc;
	char *msg;
};

/* --- errors -------------------------------------------------------------- */

static int line_of(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.line + 1 : 0;
}

__attribute__((format(printf, 4, 5))) static int yerr(struct yp *p, const yaml_node_t *n,
						      const char *path, const char *fmt, ...)
{
	size_t off;
	va_list ap;

	if (path && path[0])
		off = snprintf(p->msg, POL_ERR_MAX, "%s:%d: %s: ", p->file, line_of(n), path);
	else
		off = snprintf(p->msg, POL_ERR_MAX, "%s:%d: ", p->file, line_of(n));
	if (off < POL_ERR_MAX) {
		va_start(ap, fmt);
		vsnprintf(p->msg + off, POL_ERR_MAX - off, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int oom(struct yp *p)
{
	snprintf(p->msg, POL_ERR_MAX, "%s: out of memory", p->file);
	return -ENOMEM;
}

/* --- nodes --------------------------------------------------------------- */

static yaml_node_t *node(struct yp *p, int idx)
{
	return yaml_document_get_node(p->doc, idx);
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
	const char *v;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = sval(n);
	return !v[0] || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

static const char *kind_of(const yaml_node_t *n)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	return is_null(n) ? "nothing (null)" : "a scalar";
}

static int want_map(struct yp *p, const yaml_node_t *n, const char *path)
{
	if (n->type != YAML_MAPPING_NODE)
		return yerr(p, n, path, "expected a mapping, found %s", kind_of(n));
	return 0;
}

/* A list; null (an empty value) reads as the empty list. */
static int want_list(struct yp *p, const yaml_node_t *n, const char *path, size_t *len)
{
	if (n->type == YAML_SCALAR_NODE && is_null(n)) {
		*len = 0;
		return 0;
	}
	if (n->type != YAML_SEQUENCE_NODE)
		return yerr(p, n, path, "expected a list, found %s", kind_of(n));
	*len = n->data.sequence.items.top - n->data.sequence.items.start;
	return 0;
}

static yaml_node_t *item(struct yp *p, const yaml_node_t *list, size_t i)
{
	return node(p, list->data.sequence.items.start[i]);
}

/* A string: any non-null scalar (YAML numbers and booleans are read as written). */
static int want_str(struct yp *p, const yaml_node_t *n, const char *path, const char **out)
{
	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return yerr(p, n, path, "expected a string, found %s", kind_of(n));
	*out = sval(n);
	return 0;
}

static int want_bool(struct yp *p, const yaml_node_t *n, const char *path, bool *out)
{
	const char *v;

	if (n->type == YAML_SCALAR_NODE) {
		v = sval(n);
		if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) {
			*out = true;
			return 0;
		}
		if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) {
			*out = false;
			return 0;
		}
	}
	return yerr(p, n, path, "expected true or false, found %s%s%s%s", kind_of(n),
		    n->type == YAML_SCALAR_NODE ? " '" : "",
		    n->type == YAML_SCALAR_NODE ? sval(n) : "",
		    n->type == YAML_SCALAR_NODE ? "'" : "");
}

/*
 * Iterate over a mapping: every key must be a scalar and appear once.
 * Fills *key (the key node), *val and *name; returns 1 per pair, 0 at the end,
 * negative on an error.
 */
struct miter {
	const yaml_node_t *map;
	yaml_node_pair_t *pair;
};

static void miter_init(struct miter *it, const yaml_node_t *map)
{
	it->map = map;
	it->pair = map->data.mapping.pairs.start;
}

static int miter_next(struct yp *p, struct miter *it, const char *path, yaml_node_t **key,
		      yaml_node_t **val, const char **name)
{
	yaml_node_pair_t *q;

	if (it->pair >= it->map->data.mapping.pairs.top)
		return 0;
	*key = node(p, it->pair->key);
	*val = node(p, it->pair->value);
	if ((*key)->type != YAML_SCALAR_NODE)
		return yerr(p, *key, path, "a key must be a plain name, found %s", kind_of(*key));
	*name = sval(*key);
	for (q = it->map->data.mapping.pairs.start; q < it->pair; q++) {
		yaml_node_t *k = node(p, q->key);

		if (k->type == YAML_SCALAR_NODE && !strcmp(sval(k), *name))
			return yerr(p, *key, path, "field '%s' appears twice (first on line %d)",
				    *name, line_of(k));
	}
	it->pair++;
	return 1;
}

static void join(char *out, const char *path, const char *field)
{
	snprintf(out, PATH_LEN, "%s%s%s", path, path[0] ? "." : "", field);
}

static void joini(char *out, const char *path, size_t i)
{
	snprintf(out, PATH_LEN, "%s[%zu]", path, i);
}

/* Fields Cilium knows and bpflb refuses, with the reason. */
struct unsupported {
	const char *field;
	const char *why;
};

static int bad_field(struct yp *p, const yaml_node_t *key, const char *path, const char *name,
		     const struct unsupported *tbl, const char *expected)
{
	char fp[PATH_LEN];

	join(fp, path, name);
	for (; tbl && tbl->field; tbl++)
		if (!strcmp(tbl->field, name))
			return yerr(p, key, fp, "%s", tbl->why);
	return yerr(p, key, fp, "unknown field; expected %s", expected);
}

/* --- small values -------------------------------------------------------- */

static char *dup_str(const char *s)
{
	return strdup(s);
}

static void *grow(void *arr, size_t n, size_t size)
{
	return reallocarray(arr, n + 1, size);
}

static int parse_prefix(struct yp *p, const yaml_node_t *n, const char *path,
			struct pol_prefix *out)
{
	char buf[64], *slash;
	const char *s;
	unsigned long plen = 32;
	struct in_addr a;
	uint32_t mask;
	int ret;

	ret = want_str(p, n, path, &s);
	if (ret)
		return ret;
	if (strchr(s, ':'))
		return yerr(p, n, path, "'%s' is IPv6: the datapath handles IPv4 only", s);
	if (strlen(s) >= sizeof(buf))
		return yerr(p, n, path, "'%s' is not an IPv4 CIDR", s);
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		char *end;

		*slash = 0;
		errno = 0;
		plen = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || errno || plen > 32)
			return yerr(p, n, path,
				    "'%s' is not an IPv4 CIDR; expected ADDRESS/LENGTH with a "
				    "length of 0 to 32, e.g. 10.0.0.0/8",
				    s);
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return yerr(p, n, path, "'%s' is not an IPv4 address or CIDR, e.g. 10.0.0.0/8", s);
	mask = plen ? htonl(~0u << (32 - plen)) : 0;
	if (a.s_addr & ~mask) {
		struct in_addr net = {.s_addr = a.s_addr & mask};
		char nb[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &net, nb, sizeof(nb));
		return yerr(p, n, path, "'%s' has host bits set; did you mean %s/%lu?", s, nb,
			    plen);
	}
	out->addr = a.s_addr;
	out->plen = plen;
	return 0;
}

static bool prefix_within(const struct pol_prefix *in, const struct pol_prefix *out)
{
	uint32_t mask = out->plen ? htonl(~0u << (32 - out->plen)) : 0;

	return in->plen >= out->plen && (in->addr & mask) == out->addr;
}

static int parse_u16(struct yp *p, const yaml_node_t *n, const char *path, const char *what,
		     uint16_t *out, bool named_ok_hint)
{
	const char *s;
	char *end;
	unsigned long v;
	int ret;

	ret = want_str(p, n, path, &s);
	if (ret)
		return ret;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (!isdigit((unsigned char)s[0]) || *end || errno || v > 65535) {
		if (named_ok_hint && isalpha((unsigned char)s[0]))
			return yerr(p, n, path,
				    "named port '%s' is not supported: bpflb does not know the "
				    "workloads' container ports; use the port number",
				    s);
		return yerr(p, n, path, "'%s' is not a %s; expected a number from 0 to 65535", s,
			    what);
	}
	*out = v;
	return 0;
}

/* --- selectors ----------------------------------------------------------- */

enum sel_kind { SEL_NODE, SEL_ENDPOINT, SEL_PEER };

static const struct {
	const char *name;
	uint32_t flag;
} reserved_labels[] = {
    {"host", POL_ENT_HOST},
    {"remote-node", POL_ENT_REMOTE_NODE},
    {"kube-apiserver", POL_ENT_APISERVER},
    {"world", POL_ENT_WORLD},
};

/*
 * Label keys may carry Cilium's source prefix: "k8s:app" and "any:app" are
 * "app"; "reserved:host" names an entity (peer selectors only).
 */
static int label_key(struct yp *p, const yaml_node_t *n, const char *path, enum sel_kind kind,
		     const char *key, const char **plain, uint32_t *reserved)
{
	const char *colon = strchr(key, ':');
	size_t i;

	*reserved = 0;
	*plain = key;
	if (!key[0])
		return yerr(p, n, path, "empty label key");
	if (!colon)
		return 0;
	if (!strncmp(key, "k8s:", 4) || !strncmp(key, "any:", 4)) {
		*plain = key + 4;
		if (!**plain)
			return yerr(p, n, path, "empty label key after '%.4s'", key);
		return 0;
	}
	if (!strncmp(key, "reserved:", 9)) {
		if (kind != SEL_PEER)
			return yerr(p, n, path,
				    "reserved label '%s' cannot select a subject; use "
				    "nodeSelector to select nodes",
				    key);
		for (i = 0; i < sizeof(reserved_labels) / sizeof(reserved_labels[0]); i++)
			if (!strcmp(key + 9, reserved_labels[i].name)) {
				*reserved = reserved_labels[i].flag;
				return 0;
			}
		return yerr(p, n, path,
			    "reserved label '%s' is not supported; expected reserved:host, "
			    "reserved:remote-node, reserved:kube-apiserver or reserved:world",
			    key);
	}
	return yerr(p, n, path,
		    "label source '%.*s:' is not supported; expected a plain key, or k8s:, any: "
		    "or reserved:",
		    (int)(colon - key), key);
}

static int parse_match_labels(struct yp *p, const yaml_node_t *n, const char *path,
			      enum sel_kind kind, struct pol_selector *sel)
{
	yaml_node_t *k, *v;
	const char *name, *plain;
	char fp[PATH_LEN];
	struct miter it;
	uint32_t res;
	int ret;

	if (is_null(n))
		return 0;
	ret = want_map(p, n, path);
	if (ret)
		return ret;
	miter_init(&it, n);
	while ((ret = miter_next(p, &it, path, &k, &v, &name)) > 0) {
		struct pol_label *l;
		const char *value = "";

		join(fp, path, name);
		ret = label_key(p, k, fp, kind, name, &plain, &res);
		if (ret)
			return ret;
		if (v->type != YAML_SCALAR_NODE)
			return yerr(p, v, fp, "a label value must be a string, found %s",
				    kind_of(v));
		if (!is_null(v))
			value = sval(v);
		if (res) {
			if (value[0])
				return yerr(p, v, fp,
					    "a reserved label has no value; write '%s: \"\"'",
					    name);
			sel->reserved |= res;
			continue;
		}
		l = grow(sel->labels, sel->nlabels, sizeof(*l));
		if (!l)
			return oom(p);
		sel->labels = l;
		l += sel->nlabels;
		l->key = dup_str(plain);
		l->value = dup_str(value);
		sel->nlabels++;
		if (!l->key || !l->value)
			return oom(p);
	}
	return ret;
}

static int parse_expr(struct yp *p, const yaml_node_t *n, const char *path, enum sel_kind kind,
		      struct pol_expr *e, bool *has_values)
{
	yaml_node_t *k, *v, *key_node = NULL, *op_node = NULL;
	const char *name, *s, *plain;
	char fp[PATH_LEN], ip[PATH_LEN];
	struct miter it;
	uint32_t res;
	size_t len, i;
	int ret;

	ret = want_map(p, n, path);
	if (ret)
		return ret;
	*has_values = false;
	miter_init(&it, n);
	while ((ret = miter_next(p, &it, path, &k, &v, &name)) > 0) {
		join(fp, path, name);
		if (!strcmp(name, "key")) {
			ret = want_str(p, v, fp, &s);
			if (ret)
				return ret;
			ret = label_key(p, v, fp, kind, s, &plain, &res);
			if (ret)
				return ret;
			if (res)
				return yerr(p, v, fp,
					    "reserved labels can only be used in matchLabels");
			e->key = dup_str(plain);
			if (!e->key)
				return oom(p);
			key_node = v;
		} else if (!strcmp(name, "operator")) {
			ret = want_str(p, v, fp, &s);
			if (ret)
				return ret;
			if (!strcmp(s, "In"))
				e->op = POL_OP_IN;
			else if (!strcmp(s, "NotIn"))
				e->op = POL_OP_NOT_IN;
			else if (!strcmp(s, "Exists"))
				e->op = POL_OP_EXISTS;
			else if (!strcmp(s, "DoesNotExist"))
				e->op = POL_OP_DOES_NOT_EXIST;
			else
				return yerr(p, v, fp,
					    "'%s' is not an operator; expected In, NotIn, Exists "
					    "or DoesNotExist",
					    s);
			op_node = v;
		} else if (!strcmp(name, "values")) {
			ret = want_list(p, v, fp, &len);
			if (ret)
				return ret;
			e->values = calloc(len ? len : 1, sizeof(*e->values));
			if (!e->values)
				return oom(p);
			for (i = 0; i < len; i++) {
				joini(ip, fp, i);
				ret = want_str(p, item(p, v, i), ip, &s);
				if (ret)
					return ret;
				e->values[i] = dup_str(s);
				if (!e->values[i])
					return oom(p);
				e->nvalues++;
			}
			*has_values = len > 0;
		} else {
			return bad_field(p, k, path, name, NULL, "key, operator or values");
		}
	}
	if (ret)
		return ret;
	if (!key_node)
		return yerr(p, n, path, "a match expression needs a key");
	if (!op_node)
		return yerr(p, n, path, "a match expression needs an operator");
	if ((e->op == POL_OP_IN || e->op == POL_OP_NOT_IN) && !*has_values)
		return yerr(p, op_node, path, "operator %s needs a non-empty values list",
			    e->op == POL_OP_IN ? "In" : "NotIn");
	if ((e->op == POL_OP_EXISTS || e->op == POL_OP_DOES_NOT_EXIST) && *has_values)
		return yerr(p, op_node, path, "operator %s takes no values",
			    e->op == POL_OP_EXISTS ? "Exists" : "DoesNotExist");
	return 0;
}

static int parse_selector(struct yp *p, const yaml_node_t *n, const char *path, enum sel_kind kind,
			  struct pol_selector *sel)
{
	yaml_node_t *k, *v;
	const char *name;
	char fp[PATH_LEN], ip[PATH_LEN];
	struct miter it;
	size_t len, i;
	bool hv;
	int ret;

	sel->line = line_of(n);
	if (n->type != YAML_MAPPING_NODE)
		return yerr(p, n, path,
			    "expected a label selector (a mapping; {} selects all), "
			    "found %s",
			    kind_of(n));
	miter_init(&it, n);
	while ((ret = miter_next(p, &it, path, &k, &v, &name)) > 0) {
		join(fp, path, name);
		if (!strcmp(name, "matchLabels")) {
			ret = parse_match_labels(p, v, fp, kind, sel);
		} else if (!strcmp(name, "matchExpressions")) {
			ret = want_list(p, v, fp, &len);
			if (ret)
				return ret;
			sel->exprs = calloc(len ? len : 1, sizeof(*sel->exprs));
			if (!sel->exprs)
				return oom(p);
			for (i = 0; i < len && !ret; i++) {
				joini(ip, fp, i);
				sel->nexprs++;
				ret = parse_expr(p, item(p, v, i), ip, kind, &sel->exprs[i], &hv);
			}
		} else {
			return bad_field(p, k, path, name, NULL, "matchLabels or matchExpressions");
		}
		if (ret)
			return ret;
	}
	return ret;
}

/* --- rules --------------------------------------------------------------- */

static const struct {
	const char *name;
	uint32_t flag;
} entities[] = {
    {"host", POL_ENT_HOST},
    {"remote-node", POL_ENT_REMOTE_NODE},
    {"kube-apiserver", POL_ENT_APISERVER},
    {"cluster", POL_ENT_CLUSTER},
    {"world", POL_ENT_WORLD},
    {"world-ipv4", POL_ENT_WORLD},
    {"all", POL_ENT_ALL},
};

const char *pol_entity_name(uint32_t ent)
{
	for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++)
		if (entities[i].flag == ent)
			return entities[i].name;
	return ent == POL_ENT_ENDPOINT ? "endpoint" : "?";
}

static int parse_entities(struct yp *p, const yaml_node_t *n, const char *path, uint32_t *mask)
{
	char ip[PATH_LEN];
	const char *s;
	size_t len, i, j;
	int ret;

	ret = want_list(p, n, path, &len);
	for (i = 0; i < len && !ret; i++) {
		joini(ip, path, i);
		ret = want_str(p, item(p, n, i), ip, &s);
		if (ret)
			break;
		for (j = 0; j < sizeof(entities) / sizeof(entities[0]); j++)
			if (!strcmp(s, entities[j].name))
				break;
		if (j < sizeof(entities) / sizeof(entities[0])) {
			*mask |= entities[j].flag;
			continue;
		}
		if (!strcmp(s, "world-ipv6"))
			return yerr(p, item(p, n, i), ip,
				    "entity world-ipv6 is not supported: the datapath handles IPv4 "
				    "only");
		if (!strcmp(s, "health") || !strcmp(s, "init") || !strcmp(s, "unmanaged") ||
		    !strcmp(s, "ingress"))
			return yerr(
			    p, item(p, n, i), ip,
			    "entity %s is not supported: bpflb has no such identity; "
			    "expected host, remote-node, kube-apiserver, cluster, world or all",
			    s);
		return yerr(p, item(p, n, i), ip,
			    "'%s' is not an entity; expected host, remote-node, kube-apiserver, "
			    "cluster, world or all",
			    s);
	}
	return ret;
}

static int add_cidr(struct yp *p, struct pol_rule *r, const struct pol_prefix *pfx, int line,
		    struct pol_cidr **out)
{
	struct pol_cidr *c = grow(r->cidrs, r->ncidrs, sizeof(*c));

	if (!c)
		return oom(p);
	r->cidrs = c;
	c += r->ncidrs++;
	memset(c, 0, sizeof(*c));
	c->net = *pfx;
	c->line = line;
	if (out)
		*out = c;
	return 0;
}

static int parse_cidr_list(struct yp *p, const yaml_node_t *n, const char *path, struct pol_rule *r)
{
	struct pol_prefix pfx;
	char ip[PATH_LEN];
	size_t len, i;
	int ret;

	ret = want_list(p, n, path, &len);
	for (i = 0; i < len && !ret; i++) {
		joini(ip, path, i);
		ret = parse_prefix(p, item(p, n, i), ip, &pfx);
		if (!ret)
			ret = add_cidr(p, r, &pfx, line_of(item(p, n, i)), NULL);
	}
	return ret;
}

static const struct unsupported cidrset_unsupported[] = {
    {"cidrGroupRef", "CIDR groups (cidrGroupRef) are not supported; write the CIDR"},
    {"cidrGroupSelector", "CIDR groups (cidrGroupSelector) are not supported; write the CIDR"},
    {NULL, NULL},
};

static int parse_cidr_set(struct yp *p, const yaml_node_t *n, const char *path, struct pol_rule *r)
{
	yaml_node_t *k, *v, *cidr = NULL, *except = NULL;
	char ip[PATH_LEN], fp[PATH_LEN], ep[PATH_LEN];
	struct pol_prefix pfx;
	struct pol_cidr *c;
	const char *name;
	struct miter it;
	size_t len, elen, i, j;
	int ret;

	ret = want_list(p, n, path, &len);
	for (i = 0; i < len && !ret; i++) {
		yaml_node_t *e = item(p, n, i);

		joini(ip, path, i);
		ret = want_map(p, e, ip);
		if (ret)
			return ret;
		cidr = except = NULL;
		miter_init(&it, e);
		while ((ret = miter_next(p, &it, ip, &k, &v, &name)) > 0) {
			if (!strcmp(name, "cidr"))
				cidr = v;
			else if (!strcmp(name, "except"))
				except = v;
			else
				return bad_field(p, k, ip, name, cidrset_unsupported,
						 "cidr or except");
		}
		if (ret)
			return ret;
		if (!cidr)
			return yerr(p, e, ip, "a CIDR set needs a cidr");
		join(fp, ip, "cidr");
		ret = parse_prefix(p, cidr, fp, &pfx);
		if (ret)
			return ret;
		ret = add_cidr(p, r, &pfx, line_of(cidr), &c);
		if (ret || !except)
			continue;
		join(fp, ip, "except");
		ret = want_list(p, except, fp, &elen);
		if (ret)
			return ret;
		c->except = calloc(elen ? elen : 1, sizeof(*c->except));
		if (!c->except)
			return oom(p);
		for (j = 0; j < elen; j++) {
			joini(ep, fp, j);
			ret = parse_prefix(p, item(p, except, j), ep, &c->except[j]);
			if (ret)
				return ret;
			if (!prefix_within(&c->except[j], &c->net))
				return yerr(p, item(p, except, j), ep,
					    "except %s is not inside cidr %s",
					    sval(item(p, except, j)), sval(cidr));
			c->nexcept++;
		}
	}
	return ret;
}

static int parse_endpoint_list(struct yp *p, const yaml_node_t *n, const char *path,
			       struct pol_rule *r)
{
	char ip[PATH_LEN];
	size_t len, i;
	int ret;

	ret = want_list(p, n, path, &len);
	if (ret)
		return ret;
	r->endpoints = calloc(len ? len : 1, sizeof(*r->endpoints));
	if (!r->endpoints)
		return oom(p);
	for (i = 0; i < len && !ret; i++) {
		joini(ip, path, i);
		r->nendpoints++;
		ret = parse_selector(p, item(p, n, i), ip, SEL_PEER, &r->endpoints[i]);
	}
	return ret;
}

static int parse_port(struct yp *p, const yaml_node_t *n, const char *path, struct pol_rule *r)
{
	yaml_node_t *k, *v, *port = NULL, *end = NULL, *proto = NULL;
	char fp[PATH_LEN];
	struct pol_port *pp;
	const char *name, *s;
	struct miter it;
	uint16_t endv = 0;
	int ret;

	ret = want_map(p, n, path);
	if (ret)
		return ret;
	pp = grow(r->ports, r->nports, sizeof(*pp));
	if (!pp)
		return oom(p);
	r->ports = pp;
	pp += r->nports++;
	memset(pp, 0, sizeof(*pp));
	pp->line = line_of(n);
	miter_init(&it, n);
	while ((ret = miter_next(p, &it, path, &k, &v, &name)) > 0) {
		if (!strcmp(name, "port"))
			port = v;
		else if (!strcmp(name, "endPort"))
			end = v;
		else if (!strcmp(name, "protocol"))
			proto = v;
		else
			return bad_field(p, k, path, name, NULL, "port, endPort or protocol");
	}
	if (ret)
		return ret;
	if (port) {
		join(fp, path, "port");
		ret = parse_u16(p, port, fp, "port", &pp->port, true);
		if (ret)
			return ret;
	}
	if (end) {
		join(fp, path, "endPort");
		ret = parse_u16(p, end, fp, "port", &endv, false);
		if (ret)
			return ret;
		if (!pp->port)
			return yerr(p, end, fp, "endPort needs a non-zero port to start the range");
		if (endv < pp->port)
			return yerr(p, end, fp, "endPort %u is below port %u", endv, pp->port);
	}
	if (!pp->port) {
		pp->end = 65535; /* port 0 or none: every port */
	} else {
		pp->end = end ? endv : pp->port;
	}
	pp->proto = 0;
	if (proto) {
		join(fp, path, "protocol");
		ret = want_str(p, proto, fp, &s);
		if (ret)
			return ret;
		if (!strcmp(s, "TCP"))
			pp->proto = IPPROTO_TCP;
		else if (!strcmp(s, "UDP"))
			pp->proto = IPPROTO_UDP;
		else if (!strcmp(s, "ANY"))
			pp->proto = 0;
		else if (!strcmp(s, "SCTP"))
			return yerr(p, proto, fp,
				    "protocol SCTP is not supported; expected TCP, "
				    "UDP or ANY");
		else
			return yerr(p, proto, fp,
				    "'%s' is not a protocol; expected TCP, UDP or ANY", s);
	}
	return 0;
}

static const struct unsupported port_rule_unsupported[] = {
    {"rules", "L7 rules are not supported (bpflb has no proxy); remove them to allow the "
	      "whole port"},
    {"terminatingTLS", "TLS interception (terminatingTLS) is not supported"},
    {"originatingTLS", "TLS origination (originatingTLS) is not supported"},
    {"serverNames", "TLS SNI matching (serverNames) is not supported"},
    {"listener", "Envoy listeners are not supported"},
    {NULL, NULL},
};

static int parse_to_ports(struct yp *p, const yaml_node_t *n, const char *path, struct pol_rule *r)
{
	yaml_node_t *k, *v, *ports;
	char ip[PATH_LEN], fp[PATH_LEN], pp[PATH_LEN];
	const char *name;
	struct miter it;
	size_t len, plen, i, j;
	int ret;

	ret = want_list(p, n, path, &len);
	for (i = 0; i < len && !ret; i++) {
		yaml_node_t *e = item(p, n, i);

		joini(ip, path, i);
		ret = want_map(p, e, ip);
		if (ret)
			return ret;
		ports = NULL;
		miter_init(&it, e);
		while ((ret = miter_next(p, &it, ip, &k, &v, &name)) > 0) {
			if (!strcmp(name, "ports"))
				ports = v;
			else
				return bad_field(p, k, ip, name, port_rule_unsupported, "ports");
		}
		if (ret)
			return ret;
		join(fp, ip, "ports");
		if (!ports)
			return yerr(p, e, ip, "a toPorts entry needs ports");
		ret = want_list(p, ports, fp, &plen);
		if (ret)
			return ret;
		if (!plen)
			return yerr(p, ports, fp, "needs at least one port");
		for (j = 0; j < plen && !ret; j++) {
			joini(pp, fp, j);
			ret = parse_port(p, item(p, ports, j), pp, r);
		}
	}
	return ret;
}

static const struct unsupported ingress_unsupported[] = {
    {"fromRequires", "fromRequires is not supported; write the peers in fromEndpoints"},
    {"fromNodes", "fromNodes is not supported; use fromEntities (host, remote-node) or "
		  "fromCIDR"},
    {"fromGroups", "cloud provider groups (fromGroups) are not supported"},
    {"icmps", "ICMP type rules (icmps) are not supported; an L3 rule (no toPorts) "
	      "allows ICMP"},
    {"authentication", "mutual authentication is not supported"},
    {NULL, NULL},
};

static const struct unsupported egress_unsupported[] = {
    {"toRequires", "toRequires is not supported; write the peers in toEndpoints"},
    {"toNodes", "toNodes is not supported; use toEntities (host, remote-node) or toCIDR"},
    {"toGroups", "cloud provider groups (toGroups) are not supported"},
    {"toServices", "toServices is not supported; use toEndpoints or toCIDR"},
    {"toFQDNs", "DNS based rules (toFQDNs) are not supported; use toCIDR"},
    {"icmps", "ICMP type rules (icmps) are not supported; an L3 rule (no toPorts) "
	      "allows ICMP"},
    {"authentication", "mutual authentication is not supported"},
    {NULL, NULL},
};

static bool sec_ingress(enum pol_section sec)
{
	return sec == POL_SEC_INGRESS || sec == POL_SEC_INGRESS_DENY;
}

static int parse_rule(struct yp *p, const yaml_node_t *n, const char *path, enum pol_section sec,
		      struct pol_rule *r)
{
	const char *pre = sec_ingress(sec) ? "from" : "to";
	size_t plen = strlen(pre);
	yaml_node_t *k, *v;
	char fp[PATH_LEN];
	bool peers = false;
	const char *name;
	struct miter it;
	int ret;

	r->line = line_of(n);
	ret = want_map(p, n, path);
	if (ret)
		return ret;
	miter_init(&it, n);
	while ((ret = miter_next(p, &it, path, &k, &v, &name)) > 0) {
		join(fp, path, name);
		if (!strcmp(name, "toPorts")) {
			ret = parse_to_ports(p, v, fp, r);
		} else if (!strncmp(name, pre, plen) && !strcmp(name + plen, "Entities")) {
			ret = parse_entities(p, v, fp, &r->entities);
			peers = true;
		} else if (!strncmp(name, pre, plen) && !strcmp(name + plen, "CIDR")) {
			ret = parse_cidr_list(p, v, fp, r);
			peers = true;
		} else if (!strncmp(name, pre, plen) && !strcmp(name + plen, "CIDRSet")) {
			ret = parse_cidr_set(p, v, fp, r);
			peers = true;
		} else if (!strncmp(name, pre, plen) && !strcmp(name + plen, "Endpoints")) {
			ret = parse_endpoint_list(p, v, fp, r);
			peers = true;
		} else if (sec_ingress(sec) && !strncmp(name, "to", 2)) {
			return yerr(p, k, fp,
				    "%s is an egress field; ingress rules name their peers with "
				    "from%s",
				    name, name + 2);
		} else if (!sec_ingress(sec) && !strncmp(name, "from", 4)) {
			return yerr(p, k, fp,
				    "%s is an ingress field; egress rules name their peers with "
				    "to%s",
				    name, name + 4);
		} else {
			char exp[160];

			snprintf(exp, sizeof(exp),
				 "%sEntities, %sCIDR, %sCIDRSet, %sEndpoints or toPorts", pre, pre,
				 pre, pre);
			return bad_field(
			    p, k, path, name,
			    sec_ingress(sec) ? ingress_unsupported : egress_unsupported, exp);
		}
		if (ret)
			return ret;
	}
	if (ret)
		return ret;
	/* No peer field: toPorts alone applies to every peer; {} selects nothing. */
	r->any_peer = !peers && r->nports > 0;
	return 0;
}

const char *pol_section_name(enum pol_section sec)
{
	static const char *const names[] = {"ingress", "ingressDeny", "egress", "egressDeny"};

	return names[sec];
}

static int parse_rules(struct yp *p, const yaml_node_t *n, const char *path, enum pol_section sec,
		       struct pol_spec *s, unsigned int *ordinal)
{
	char ip[PATH_LEN];
	size_t len, i;
	int ret;

	ret = want_list(p, n, path, &len);
	if (ret)
		return ret;
	for (i = 0; i < len; i++) {
		struct pol_rule *r = grow(s->rules, s->nrules, sizeof(*r));

		if (!r)
			return oom(p);
		s->rules = r;
		r += s->nrules++;
		memset(r, 0, sizeof(*r));
		r->sec = sec;
		r->index = i;
		r->ordinal = ++*ordinal;
		joini(ip, path, i);
		if (r->ordinal > POL_MAX_RULES_PER_SECTION)
			return yerr(p, item(p, n, i), ip, "more than %d %s rules in one policy",
				    POL_MAX_RULES_PER_SECTION, pol_section_name(sec));
		ret = parse_rule(p, item(p, n, i), ip, sec, r);
		if (ret)
			return ret;
	}
	if (len)
		s->has_rules[sec_ingress(sec) ? POL_DIR_IN : POL_DIR_OUT] = true;
	return 0;
}

/* --- spec, metadata, documents -------------------------------------------- */

static const struct unsupported spec_unsupported[] = {
    {"labels", "rule labels are not supported; put labels in metadata.labels"},
    {"log", "policy logging (log) is not supported; bpflb reports drops and audits as flow "
	    "events"},
    {NULL, NULL},
};

static int parse_default_deny(struct yp *p, const yaml_node_t *n, const char *path,
			      struct pol_spec *s)
{
	yaml_node_t *k, *v;
	char fp[PATH_LEN];
	const char *name;
	struct miter it;
	bool b = false;
	int ret;

	ret = want_map(p, n, path);
	if (ret)
		return ret;
	miter_init(&it, n);
	while ((ret = miter_next(p, &it, path, &k, &v, &name)) > 0) {
		join(fp, path, name);
		if (!strcmp(name, "ingress") || !strcmp(name, "egress")) {
			ret = want_bool(p, v, fp, &b);
			if (ret)
				return ret;
			s->default_deny[name[0] == 'i' ? POL_DIR_IN : POL_DIR_OUT] = b;
		} else {
			return bad_field(p, k, path, name, NULL, "ingress or egress");
		}
	}
	return ret;
}

static int parse_spec(struct yp *p, const yaml_node_t *n, const char *path, struct pol_spec *s,
		      unsigned int ordinals[4])
{
	yaml_node_t *k, *v, *nodesel = NULL, *epsel = NULL;
	char fp[PATH_LEN];
	const char *name, *str;
	struct miter it;
	int ret;

	s->line = line_of(n);
	s->default_deny[0] = s->default_deny[1] = -1;
	ret = want_map(p, n, path);
	if (ret)
		return ret;
	miter_init(&it, n);
	while ((ret = miter_next(p, &it, path, &k, &v, &name)) > 0) {
		join(fp, path, name);
		if (!strcmp(name, "description")) {
			ret = want_str(p, v, fp, &str);
			if (!ret && !(s->description = dup_str(str)))
				ret = oom(p);
		} else if (!strcmp(name, "nodeSelector")) {
			nodesel = k;
			ret = parse_selector(p, v, fp, SEL_NODE, &s->subject);
		} else if (!strcmp(name, "endpointSelector")) {
			epsel = k;
			ret = parse_selector(p, v, fp, SEL_ENDPOINT, &s->subject);
		} else if (!strcmp(name, "ingress")) {
			ret = parse_rules(p, v, fp, POL_SEC_INGRESS, s, &ordinals[0]);
		} else if (!strcmp(name, "ingressDeny")) {
			ret = parse_rules(p, v, fp, POL_SEC_INGRESS_DENY, s, &ordinals[1]);
		} else if (!strcmp(name, "egress")) {
			ret = parse_rules(p, v, fp, POL_SEC_EGRESS, s, &ordinals[2]);
		} else if (!strcmp(name, "egressDeny")) {
			ret = parse_rules(p, v, fp, POL_SEC_EGRESS_DENY, s, &ordinals[3]);
		} else if (!strcmp(name, "enableDefaultDeny")) {
			ret = parse_default_deny(p, v, fp, s);
		} else {
			return bad_field(p, k, path, name, spec_unsupported,
					 "description, nodeSelector, endpointSelector, ingress, "
					 "ingressDeny, egress, egressDeny or enableDefaultDeny");
		}
		if (ret)
			return ret;
	}
	if (ret)
		return ret;
	if (nodesel && epsel)
		return yerr(p, epsel, path,
			    "nodeSelector and endpointSelector exclude each other: a spec selects "
			    "nodes (host policy) or workloads");
	if (!nodesel && !epsel)
		return yerr(p, n, path,
			    "a spec needs nodeSelector (host policy) or endpointSelector "
			    "(workloads)");
	s->node = nodesel != NULL;
	return 0;
}

/* RFC 1123 subdomain, as Kubernetes requires of object names. */
static bool k8s_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 253 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' ||
		      s[i] == '.'))
			return false;
	return true;
}

static int parse_string_map(struct yp *p, const yaml_node_t *n, const char *path,
			    const char *want_key, const yaml_node_t **found)
{
	yaml_node_t *k, *v;
	char fp[PATH_LEN];
	const char *name;
	struct miter it;
	int ret;

	if (is_null(n))
		return 0;
	ret = want_map(p, n, path);
	if (ret)
		return ret;
	miter_init(&it, n);
	while ((ret = miter_next(p, &it, path, &k, &v, &name)) > 0) {
		join(fp, path, name);
		if (v->type != YAML_SCALAR_NODE)
			return yerr(p, v, fp, "expected a string, found %s", kind_of(v));
		if (want_key && !strcmp(name, want_key))
			*found = v;
	}
	return ret;
}

static int parse_metadata(struct yp *p, const yaml_node_t *n, const char *path,
			  struct pol_policy *pol, const yaml_node_t **name_node)
{
	const yaml_node_t *audit = NULL;
	yaml_node_t *k, *v, *namen = NULL;
	char fp[PATH_LEN];
	const char *name, *s;
	struct miter it;
	int ret;

	ret = want_map(p, n, path);
	if (ret)
		return ret;
	miter_init(&it, n);
	while ((ret = miter_next(p, &it, path, &k, &v, &name)) > 0) {
		join(fp, path, name);
		if (!strcmp(name, "name")) {
			ret = want_str(p, v, fp, &s);
			if (ret)
				return ret;
			if (!k8s_name_ok(s))
				return yerr(
				    p, v, fp,
				    "'%s' is not a Kubernetes object name: lower case "
				    "letters, digits, '-' and '.', at most 253, starting and "
				    "ending with a letter or digit",
				    s);
			namen = v;
			pol->name = dup_str(s);
			if (!pol->name)
				return oom(p);
		} else if (!strcmp(name, "labels")) {
			ret = parse_string_map(p, v, fp, NULL, NULL);
		} else if (!strcmp(name, "annotations")) {
			ret = parse_string_map(p, v, fp, POL_AUDIT_ANNOTATION, &audit);
		} else if (!strcmp(name, "namespace")) {
			return yerr(p, k, fp,
				    "a CiliumClusterwideNetworkPolicy is cluster-scoped and has no "
				    "namespace; remove it");
		} else {
			return bad_field(p, k, path, name, NULL, "name, labels or annotations");
		}
		if (ret)
			return ret;
	}
	if (ret)
		return ret;
	if (!namen)
		return yerr(p, n, path, "metadata needs a name");
	*name_node = namen;
	if (audit) {
		s = sval(audit);
		snprintf(fp, sizeof(fp), "%s.annotations.%s", path, POL_AUDIT_ANNOTATION);
		if (!strcmp(s, "true"))
			pol->audit = true;
		else if (strcmp(s, "false"))
			return yerr(p, audit, fp, "'%s': expected \"true\" or \"false\"", s);
	}
	return 0;
}

static const struct unsupported policy_unsupported[] = {
    {"status", "status is written by the cluster, not by users; remove it"},
    {NULL, NULL},
};

static int parse_policy(struct yp *p, const yaml_node_t *n, const char *path, struct pol_set *set)
{
	yaml_node_t *k, *v, *api = NULL, *kind = NULL, *meta = NULL, *spec = NULL, *specs = NULL;
	unsigned int ordinals[4] = {0};
	const yaml_node_t *name_node = NULL;
	char fp[PATH_LEN], ip[PATH_LEN];
	struct pol_policy *pol;
	const char *name, *s;
	struct miter it;
	size_t len, i;
	int ret;

	ret = want_map(p, n, path);
	if (ret)
		return ret;
	miter_init(&it, n);
	while ((ret = miter_next(p, &it, path, &k, &v, &name)) > 0) {
		if (!strcmp(name, "apiVersion"))
			api = v;
		else if (!strcmp(name, "kind"))
			kind = v;
		else if (!strcmp(name, "metadata"))
			meta = v;
		else if (!strcmp(name, "spec"))
			spec = v;
		else if (!strcmp(name, "specs"))
			specs = v;
		else
			return bad_field(p, k, path, name, policy_unsupported,
					 "apiVersion, kind, metadata, spec or specs");
	}
	if (ret)
		return ret;
	join(fp, path, "apiVersion");
	if (!api)
		return yerr(p, n, fp, "missing; expected apiVersion: cilium.io/v2");
	ret = want_str(p, api, fp, &s);
	if (ret)
		return ret;
	if (strcmp(s, "cilium.io/v2"))
		return yerr(p, api, fp, "'%s' is not supported; expected cilium.io/v2", s);
	if (!meta)
		return yerr(p, n, path[0] ? path : "metadata", "%s",
			    path[0] ? "missing metadata" : "missing; a policy needs a name");
	if (!spec && !specs)
		return yerr(p, n, path, "a policy needs a spec (or specs)");

	pol = grow(set->pols, set->n, sizeof(*pol));
	if (!pol)
		return oom(p);
	set->pols = pol;
	pol += set->n++;
	memset(pol, 0, sizeof(*pol));
	pol->line = line_of(n);
	pol->file = dup_str(p->file);
	if (!pol->file)
		return oom(p);
	(void)kind;

	join(fp, path, "metadata");
	ret = parse_metadata(p, meta, fp, pol, &name_node);
	if (ret)
		return ret;
	for (i = 0; i + 1 < set->n; i++)
		if (!strcmp(set->pols[i].name, pol->name)) {
			join(fp, path, "metadata.name");
			return yerr(p, name_node, fp,
				    "policy '%s' is defined twice (first at %s:%d)", pol->name,
				    set->pols[i].file, set->pols[i].line);
		}
	len = (spec ? 1 : 0);
	if (specs) {
		size_t n2;

		join(fp, path, "specs");
		ret = want_list(p, specs, fp, &n2);
		if (ret)
			return ret;
		len += n2;
	}
	pol->specs = calloc(len ? len : 1, sizeof(*pol->specs));
	if (!pol->specs)
		return oom(p);
	if (spec) {
		join(fp, path, "spec");
		pol->nspecs++;
		ret = parse_spec(p, spec, fp, &pol->specs[0], ordinals);
		if (ret)
			return ret;
	}
	for (i = 0; specs && pol->nspecs < len; i++) {
		join(fp, path, "specs");
		joini(ip, fp, i);
		ret = parse_spec(p, item(p, specs, i), ip, &pol->specs[pol->nspecs++], ordinals);
		if (ret)
			return ret;
	}
	if (!pol->nspecs)
		return yerr(p, specs, fp, "a policy needs at least one spec");
	return 0;
}

static int check_kind(struct yp *p, const yaml_node_t *root, const char *path,
		      const char **kind_out)
{
	yaml_node_t *k, *v, *kind = NULL;
	char fp[PATH_LEN];
	const char *name, *s;
	struct miter it;
	int ret;

	ret = want_map(p, root, path);
	if (ret)
		return ret;
	miter_init(&it, root);
	while ((ret = miter_next(p, &it, path, &k, &v, &name)) > 0)
		if (!strcmp(name, "kind"))
			kind = v;
	if (ret)
		return ret;
	join(fp, path, "kind");
	if (!kind)
		return yerr(p, root, fp, "missing; expected kind: CiliumClusterwideNetworkPolicy");
	ret = want_str(p, kind, fp, &s);
	if (ret)
		return ret;
	*kind_out = s;
	if (!strcmp(s, "CiliumClusterwideNetworkPolicy"))
		return 0;
	if (!path[0] && (!strcmp(s, "List") || !strcmp(s, "CiliumClusterwideNetworkPolicyList")))
		return 0;
	if (!strcmp(s, "CiliumNetworkPolicy") || !strcmp(s, "NetworkPolicy"))
		return yerr(p, kind, fp,
			    "%s is not supported: only cluster-wide policies are; write it as a "
			    "CiliumClusterwideNetworkPolicy",
			    s);
	return yerr(p, kind, fp, "'%s' is not supported; expected CiliumClusterwideNetworkPolicy%s",
		    s, path[0] ? "" : " (or a List of them)");
}

static int parse_list(struct yp *p, const yaml_node_t *root, struct pol_set *set)
{
	yaml_node_t *k, *v, *items = NULL;
	char ip[PATH_LEN];
	const char *name, *s, *kind;
	struct miter it;
	size_t len, i;
	int ret;

	miter_init(&it, root);
	while ((ret = miter_next(p, &it, "", &k, &v, &name)) > 0) {
		if (!strcmp(name, "items")) {
			items = v;
		} else if (!strcmp(name, "apiVersion")) {
			ret = want_str(p, v, name, &s);
			if (ret)
				return ret;
		} else if (!strcmp(name, "kind")) {
			continue;
		} else if (!strcmp(name, "metadata")) {
			ret = want_map(p, v, name);
			if (ret)
				return ret;
		} else {
			return bad_field(p, k, "", name, NULL,
					 "apiVersion, kind, metadata or items");
		}
	}
	if (ret)
		return ret;
	if (!items)
		return yerr(p, root, "items", "missing: a List holds its policies in items");
	ret = want_list(p, items, "items", &len);
	for (i = 0; i < len && !ret; i++) {
		joini(ip, "items", i);
		ret = check_kind(p, item(p, items, i), ip, &kind);
		if (!ret)
			ret = parse_policy(p, item(p, items, i), ip, set);
	}
	return ret;
}

static int syntax_error(const char *name, const yaml_parser_t *parser, char msg[POL_ERR_MAX])
{
	snprintf(msg, POL_ERR_MAX, "%s:%zu: YAML syntax error: %s%s%s", name,
		 parser->problem_mark.line + 1, parser->problem ? parser->problem : "?",
		 parser->context ? " " : "", parser->context ? parser->context : "");
	return -EINVAL;
}

/*
 * The limits of policy_model.h, on libyaml's event stream before the document
 * is built: the scanner is quadratic in the nesting depth, and the schema walk
 * checks each mapping for duplicate keys pair by pair, so both stop at a
 * bounded size here.  Aliases are refused: the walk would follow every alias
 * again, and a few lines of them ("billion laughs") multiply its work beyond
 * any file size limit.
 */
static int prescan(const char *name, const char *buf, size_t len, char msg[POL_ERR_MAX])
{
	unsigned int keys[POL_DEPTH_MAX + 1]; /* scalars or collections in each open mapping */
	bool is_map[POL_DEPTH_MAX + 1];
	unsigned int depth = 0, nodes = 0;
	yaml_parser_t parser;
	yaml_event_t ev;
	int ret = 0;

	if (!yaml_parser_initialize(&parser)) {
		snprintf(msg, POL_ERR_MAX, "%s: out of memory", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (;;) {
		yaml_event_type_t type;
		size_t line;

		if (!yaml_parser_parse(&parser, &ev)) {
			ret = syntax_error(name, &parser, msg);
			break;
		}
		type = ev.type;
		line = ev.start_mark.line + 1;
		yaml_event_delete(&ev);
		if (type == YAML_STREAM_END_EVENT)
			break;
		if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
			depth--;
			continue;
		}
		if (type != YAML_SCALAR_EVENT && type != YAML_SEQUENCE_START_EVENT &&
		    type != YAML_MAPPING_START_EVENT && type != YAML_ALIAS_EVENT)
			continue;
		if (type == YAML_ALIAS_EVENT) {
			snprintf(msg, POL_ERR_MAX,
				 "%s:%zu: YAML aliases (*name) are not supported; write the value "
				 "out",
				 name, line);
			ret = -EINVAL;
			break;
		}
		if (++nodes > POL_NODES_MAX) {
			snprintf(msg, POL_ERR_MAX,
				 "%s:%zu: more than %u values in one file; split the policies "
				 "into several files",
				 name, line, POL_NODES_MAX);
			ret = -EINVAL;
			break;
		}
		/* Keys and values alternate in a mapping: two nodes per key. */
		if (depth && is_map[depth] && ++keys[depth] > 2 * POL_KEYS_MAX) {
			snprintf(msg, POL_ERR_MAX, "%s:%zu: a mapping with more than %u keys", name,
				 line, POL_KEYS_MAX);
			ret = -EINVAL;
			break;
		}
		if (type == YAML_SCALAR_EVENT)
			continue;
		if (depth == POL_DEPTH_MAX) {
			snprintf(msg, POL_ERR_MAX,
				 "%s:%zu: nested deeper than %u lists and mappings", name, line,
				 POL_DEPTH_MAX);
			ret = -EINVAL;
			break;
		}
		depth++;
		is_map[depth] = type == YAML_MAPPING_START_EVENT;
		keys[depth] = 0;
	}
	yaml_parser_delete(&parser);
	return ret;
}

int pol_load_buf(const char *name, const char *buf, size_t len, struct pol_set *set,
		 char msg[POL_ERR_MAX])
{
	struct yp p = {.file = name, .msg = msg};
	yaml_parser_t parser;
	yaml_document_t doc;
	int ret;

	msg[0] = 0;
	if (len > POL_FILE_MAX) {
		snprintf(msg, POL_ERR_MAX,
			 "%s: larger than %u bytes; split the policies into "
			 "several files",
			 name, POL_FILE_MAX);
		return -EFBIG;
	}
	ret = prescan(name, buf, len, msg);
	if (ret)
		return ret;
	if (!yaml_parser_initialize(&parser)) {
		snprintf(msg, POL_ERR_MAX, "%s: out of memory", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (;;) {
		yaml_node_t *root;
		const char *kind;

		if (!yaml_parser_load(&parser, &doc)) {
			ret = syntax_error(name, &parser, msg);
			break;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) { /* end of the stream */
			yaml_document_delete(&doc);
			break;
		}
		p.doc = &doc;
		if (!is_null(root)) {
			ret = check_kind(&p, root, "", &kind);
			if (!ret && strcmp(kind, "CiliumClusterwideNetworkPolicy"))
				ret = parse_list(&p, root, set);
			else if (!ret)
				ret = parse_policy(&p, root, "", set);
		}
		yaml_document_delete(&doc);
		if (ret)
			break;
	}
	yaml_parser_delete(&parser);
	return ret;
}

/*
 * One read of at most POL_FILE_MAX + 1 bytes: what is parsed is what was
 * checked, also when the file grows meanwhile.  O_NONBLOCK and the regular
 * file check keep a FIFO or a device named *.yaml from blocking the reload.
 */
int pol_load_file(const char *path, struct pol_set *set, char msg[POL_ERR_MAX])
{
	size_t got = 0;
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		snprintf(msg, POL_ERR_MAX, "%s: cannot open: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		snprintf(msg, POL_ERR_MAX, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		snprintf(msg, POL_ERR_MAX, "%s: not a regular file", path);
		goto out;
	}
	buf = malloc(POL_FILE_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		snprintf(msg, POL_ERR_MAX, "%s: out of memory", path);
		goto out;
	}
	while (got <= POL_FILE_MAX && (n = read(fd, buf + got, POL_FILE_MAX + 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(msg, POL_ERR_MAX, "%s: cannot read: %s", path, strerror(errno));
			goto out;
		}
		got += n;
	}
	ret = pol_load_buf(path, buf, got, set, msg);
	if (!ret)
		set->files++;
out:
	free(buf);
	close(fd);
	return ret;
}

static bool yaml_name(const char *n)
{
	size_t len = strlen(n);

	if (n[0] == '.')
		return false;
	return (len > 5 && !strcmp(n + len - 5, ".yaml")) ||
	       (len > 4 && !strcmp(n + len - 4, ".yml"));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int pol_load_dir(const char *dir, struct pol_set *out, char msg[POL_ERR_MAX])
{
	struct pol_set set = {0};
	char **names = NULL, path[4096];
	size_t n = 0, i;
	struct dirent *de;
	DIR *d;
	int ret = 0;

	msg[0] = 0;
	d = opendir(dir);
	if (!d) {
		ret = -errno;
		snprintf(msg, POL_ERR_MAX, "policy directory %s: %s", dir, strerror(errno));
		return ret;
	}
	while ((de = readdir(d))) {
		char **nn;

		if (!yaml_name(de->d_name))
			continue;
		nn = reallocarray(names, n + 1, sizeof(*names));
		if (!nn || !(nn[n] = strdup(de->d_name))) {
			names = nn ? nn : names;
			ret = -ENOMEM;
			snprintf(msg, POL_ERR_MAX, "%s: out of memory", dir);
			break;
		}
		names = nn;
		n++;
	}
	closedir(d);
	if (!ret && n)
		qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n && !ret; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		ret = pol_load_file(path, &set, msg);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (ret) {
		pol_set_free(&set);
		return ret;
	}
	/* Ids in load order; the plugin replaces them with its stable ones. */
	for (i = 0; i < set.n; i++)
		set.pols[i].id = i + 1;
	*out = set;
	return 0;
}

static void selector_free(struct pol_selector *s)
{
	for (size_t i = 0; i < s->nlabels; i++) {
		free(s->labels[i].key);
		free(s->labels[i].value);
	}
	free(s->labels);
	for (size_t i = 0; i < s->nexprs; i++) {
		free(s->exprs[i].key);
		for (size_t j = 0; j < s->exprs[i].nvalues; j++)
			free(s->exprs[i].values[j]);
		free(s->exprs[i].values);
	}
	free(s->exprs);
}

void pol_set_free(struct pol_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		struct pol_policy *pol = &set->pols[i];

		for (size_t j = 0; j < pol->nspecs; j++) {
			struct pol_spec *s = &pol->specs[j];

			selector_free(&s->subject);
			for (size_t k = 0; k < s->nrules; k++) {
				struct pol_rule *r = &s->rules[k];

				for (size_t c = 0; c < r->ncidrs; c++)
					free(r->cidrs[c].except);
				free(r->cidrs);
				for (size_t e = 0; e < r->nendpoints; e++)
					selector_free(&r->endpoints[e]);
				free(r->endpoints);
				free(r->ports);
			}
			free(s->rules);
			free(s->description);
		}
		free(pol->specs);
		free(pol->name);
		free(pol->file);
	}
	free(set->pols);
	memset(set, 0, sizeof(*set));
}
