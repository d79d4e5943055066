/* zookeeper_opts.c - parsing of "-c zookeeper:HOST:PORT[,...][,timeout=MS][,path=/NAME]" (no ZooKeeper code: unit-tested alone). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sheep/cluster/zookeeper.h"

#define ZK_SYNTAX "expected zookeeper:HOST:PORT[,HOST:PORT...][,timeout=MS][,path=/NAME]"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_num(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A znode path: "/a/b", no empty, "." or ".." component, no trailing '/'. */
static int check_path(const char *p)
{
	size_t n = strlen(p);
	if (n < 2 || p[0] != '/' || p[n - 1] == '/')
		return -EINVAL;
	for (const char *c = p; *c; c++) {
		if (*c == '/' && (c[1] == '/' || (c[1] == '.' && (c[2] == '/' || !c[2] ||
								 (c[2] == '.' && (c[3] == '/' || !c[3]))))))
			return -EINVAL;
		if ((unsigned char)*c < 0x21 || *c == 0x7f)
			return -EINVAL;
	}
	return 0;
}

static int check_host(const char *tok, char *err, size_t errlen)
{
	const char *colon;
	if (tok[0] == '[') {
		const char *rb = strchr(tok, ']');
		if (!rb || rb == tok + 1 || rb[1] != ':')
			return fail(err, errlen, "bad ZooKeeper server '%s': %s", tok, ZK_SYNTAX);
		for (const char *c = tok + 1; c < rb; c++)
			if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.')
				return fail(err, errlen, "bad IPv6 address in '%s'", tok);
		colon = rb + 1;
	} else {
		colon = strrchr(tok, ':');
		if (!colon || colon == tok || strchr(tok, ':') != colon)
			return fail(err, errlen, "bad ZooKeeper server '%s' (no HOST:PORT): %s", tok,
				    ZK_SYNTAX);
		for (const char *c = tok; c < colon; c++)
			if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_')
				return fail(err, errlen, "bad host name in '%s'", tok);
	}
	unsigned long port;
	if (parse_num(colon + 1, 1, 65535, &port))
		return fail(err, errlen, "bad port in '%s' (1..65535)", tok);
	return 0;
}

int zk_parse_options(const char *opts, struct zk_options *o, char *err, size_t errlen)
{
	char buf[1024];
	memset(o, 0, sizeof(*o));
	o->timeout_ms = ZK_DEFAULT_TIMEOUT_MS;
	snprintf(o->path, sizeof(o->path), "%s", ZK_DEFAULT_PATH);
	if (!opts || !*opts)
		return fail(err, errlen, "no ZooKeeper server given: %s", ZK_SYNTAX);
	if (strlen(opts) >= sizeof(buf))
		return fail(err, errlen, "zookeeper options too long (%zu bytes)", strlen(opts));
	strcpy(buf, opts);
	int have_path = 0, have_timeout = 0;
	size_t used = 0;
	char *save = NULL;
	size_t len = strlen(buf);
	if (len == 0 || buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,"))
		return fail(err, errlen, "empty item in '%s': %s", opts, ZK_SYNTAX);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned long v;
		if (!strncmp(tok, "timeout=", 8)) {
			if (have_timeout++ ||
			    parse_num(tok + 8, ZK_MIN_TIMEOUT_MS, ZK_MAX_TIMEOUT_MS, &v))
				return fail(err, errlen,
					    "bad '%s': timeout=MS, once, %u..%u milliseconds", tok,
					    ZK_MIN_TIMEOUT_MS, ZK_MAX_TIMEOUT_MS);
			o->timeout_ms = (unsigned)v;
			continue;
		}
		if (!strncmp(tok, "path=", 5)) {
			if (have_path++ || check_path(tok + 5) ||
			    strlen(tok + 5) >= sizeof(o->path) - 64)
				return fail(err, errlen,
					    "bad '%s': path=/NAME[/NAME...], once, no empty or dot parts",
					    tok);
			snprintf(o->path, sizeof(o->path), "%s", tok + 5);
			continue;
		}
		if (strchr(tok, '=') && !strchr(tok, ':'))
			return fail(err, errlen, "unknown zookeeper option '%s' (known: timeout=MS, path=/NAME)",
				    tok);
		if (have_timeout || have_path)
			return fail(err, errlen, "server '%s' after an option: servers come first", tok);
		/* ZooKeeper's chroot suffix on the last server: h:p/NAME */
		char *slash = strchr(tok, '/');
		if (slash) {
			if (have_path++ || check_path(slash) || strlen(slash) >= sizeof(o->path) - 64)
				return fail(err, errlen, "bad chroot path in '%s'", tok);
			snprintf(o->path, sizeof(o->path), "%s", slash);
			*slash = '\0';
		}
		int r = check_host(tok, err, errlen);
		if (r)
			return r;
		if (++o->nr_hosts > ZK_MAX_HOSTS)
			return fail(err, errlen, "more than %d ZooKeeper servers", ZK_MAX_HOSTS);
		int n = snprintf(o->hosts + used, sizeof(o->hosts) - used, "%s%s", used ? "," : "", tok);
		if (n < 0 || (size_t)n >= sizeof(o->hosts) - used)
			return fail(err, errlen, "zookeeper server list too long");
		used += (size_t)n;
	}
	if (!o->nr_hosts)
		return fail(err, errlen, "no ZooKeeper server given: %s", ZK_SYNTAX);
	return 0;
}
