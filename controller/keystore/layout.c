/* layout.c - key-store layout names, members and metadata keys, addresses, repair reports. */
#include "keystore/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KR_ID_PLACEHOLDER "{id}"

void kr_keystore_layout_init_defaults(struct kr_keystore_layout *layout)
{
	layout->active_set = "api_keys:active";
	layout->meta_key = "api_key:{id}:meta";
	layout->bootstrap_key = "api_keys:bootstrap";
	layout->store_as = KR_STORE_SHA256;
}

enum kr_status kr_keystore_layout_check(const struct kr_keystore_layout *layout,
					struct kr_error *err)
{
	const char *first;

	if (!layout->active_set || !*layout->active_set)
		return kr_error_set(err, KR_EINVAL, "keyStore.activeSet is empty");
	if (!layout->bootstrap_key || !*layout->bootstrap_key)
		return kr_error_set(err, KR_EINVAL, "keyStore.bootstrapKey is empty");
	if (!layout->meta_key || !*layout->meta_key)
		return kr_error_set(err, KR_EINVAL, "keyStore.metaKey is empty");
	first = strstr(layout->meta_key, KR_ID_PLACEHOLDER);
	if (!first)
		return kr_error_set(err, KR_EINVAL, "keyStore.metaKey \"%s\" has no {id}",
				    layout->meta_key);
	if (strstr(first + 1, KR_ID_PLACEHOLDER))
		return kr_error_set(err, KR_EINVAL, "keyStore.metaKey \"%s\" has {id} twice",
				    layout->meta_key);
	if (!strcmp(layout->active_set, layout->bootstrap_key))
		return kr_error_set(err, KR_EINVAL,
				    "keyStore.activeSet and keyStore.bootstrapKey are both \"%s\"",
				    layout->active_set);
	if (layout->store_as != KR_STORE_SHA256 && layout->store_as != KR_STORE_PLAINTEXT)
		return kr_error_set(err, KR_EINVAL, "keyStore.storeAs is not sha256 or plaintext");
	return KR_OK;
}

const char *kr_store_as_name(enum kr_store_as store_as)
{
	return store_as == KR_STORE_PLAINTEXT ? "plaintext" : "sha256";
}

enum kr_status kr_store_as_parse(const char *text, enum kr_store_as *out, struct kr_error *err)
{
	if (text && !strcmp(text, "sha256")) {
		*out = KR_STORE_SHA256;
		return KR_OK;
	}
	if (text && !strcmp(text, "plaintext")) {
		*out = KR_STORE_PLAINTEXT;
		return KR_OK;
	}
	return kr_error_set(err, KR_EINVAL, "storeAs \"%s\": expected sha256 or plaintext",
			    text ? text : "");
}

void kr_keystore_opts_init(struct kr_keystore_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->host = "127.0.0.1";
	opts->port = 6379;
	opts->connect_timeout_ms = 5000;
	opts->command_timeout_ms = 5000;
}

static enum kr_status kr_parse_port(const char *text, const char *address, int *port,
				    struct kr_error *err)
{
	char *end;
	long v;

	if (!*text)
		return kr_error_set(err, KR_EINVAL, "address \"%s\": empty port", address);
	v = strtol(text, &end, 10);
	if (*end || v < 1 || v > 65535 || text[0] == '+' || text[0] == '-')
		return kr_error_set(err, KR_EINVAL, "address \"%s\": port is not 1..65535",
				    address);
	*port = (int)v;
	return KR_OK;
}

static enum kr_status kr_copy_host(const char *host, size_t len, const char *address, char *out,
				   size_t size, struct kr_error *err)
{
	if (!len)
		return kr_error_set(err, KR_EINVAL, "address \"%s\": empty host", address);
	if (len >= size)
		return kr_error_set(err, KR_EINVAL, "address \"%s\": host too long", address);
	memcpy(out, host, len);
	out[len] = '\0';
	return KR_OK;
}

enum kr_status kr_keystore_parse_address(const char *address, char *host, size_t host_size,
					 int *port, struct kr_error *err)
{
	const char *colon, *close;
	enum kr_status rc;

	*port = 6379;
	if (!address || !*address)
		return kr_error_set(err, KR_EINVAL, "address is empty (expected host:port)");
	if (address[0] == '[') {
		close = strchr(address, ']');
		if (!close)
			return kr_error_set(err, KR_EINVAL, "address \"%s\": missing ']'", address);
		rc = kr_copy_host(address + 1, (size_t)(close - address - 1), address, host,
				  host_size, err);
		if (rc != KR_OK || !close[1])
			return rc;
		if (close[1] != ':')
			return kr_error_set(err, KR_EINVAL,
					    "address \"%s\": expected ':' after ']'", address);
		return kr_parse_port(close + 2, address, port, err);
	}
	colon = strchr(address, ':');
	if (colon && strchr(colon + 1, ':'))
		return kr_error_set(err, KR_EINVAL,
				    "address \"%s\": write an IPv6 address as [addr]:port",
				    address);
	rc = kr_copy_host(address, colon ? (size_t)(colon - address) : strlen(address), address,
			  host, host_size, err);
	if (rc != KR_OK || !colon)
		return rc;
	return kr_parse_port(colon + 1, address, port, err);
}

void kr_keystore_now(char out[21])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- members and metadata keys ---- */

enum kr_status kr_ks_member(const struct kr_keystore_layout *layout, const struct kr_secret *key,
			    struct kr_secret **out, struct kr_error *err)
{
	char hex[65];

	if (layout->store_as == KR_STORE_PLAINTEXT)
		*out = kr_secret_new(kr_secret_data(key), kr_secret_len(key));
	else {
		kr_key_hash_hex(key, hex);
		*out = kr_secret_new(hex, 64);
	}
	if (!*out)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	return KR_OK;
}

void kr_ks_member_id(const struct kr_keystore_layout *layout, const char *member, size_t len,
		     char id[KR_KEY_ID_LEN + 1])
{
	char hex[65];
	int is_hash = len == 64;

	for (size_t i = 0; is_hash && i < len; i++)
		is_hash = (member[i] >= '0' && member[i] <= '9') ||
			  (member[i] >= 'a' && member[i] <= 'f');
	if (layout->store_as == KR_STORE_SHA256 && is_hash) {
		memcpy(id, member, KR_KEY_ID_LEN);
	} else {
		/* plaintext member, or a foreign value in a sha256 set: hash, never show it */
		kr_key_hash_hex_bytes(member, len, hex);
		memcpy(id, hex, KR_KEY_ID_LEN);
	}
	id[KR_KEY_ID_LEN] = '\0';
}

enum kr_status kr_ks_meta_key(const struct kr_keystore_layout *layout, const char *member,
			      size_t len, struct kr_secret **out, struct kr_error *err)
{
	const char *at = strstr(layout->meta_key, KR_ID_PLACEHOLDER);
	size_t head = (size_t)(at - layout->meta_key);
	size_t tail = strlen(at + strlen(KR_ID_PLACEHOLDER));
	char *p;

	*out = kr_secret_alloc(head + len + tail);
	if (!*out)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	p = kr_secret_mut(*out);
	memcpy(p, layout->meta_key, head);
	memcpy(p + head, member, len);
	memcpy(p + head + len, at + strlen(KR_ID_PLACEHOLDER), tail);
	return KR_OK;
}

int kr_ks_meta_key_member(const struct kr_keystore_layout *layout, const char *name, size_t len,
			  size_t *off, size_t *mlen)
{
	const char *at = strstr(layout->meta_key, KR_ID_PLACEHOLDER);
	size_t head = (size_t)(at - layout->meta_key);
	const char *tail = at + strlen(KR_ID_PLACEHOLDER);
	size_t tlen = strlen(tail);

	if (len < head + tlen + 1 || memcmp(name, layout->meta_key, head) != 0 ||
	    memcmp(name + len - tlen, tail, tlen) != 0)
		return 0;
	*off = head;
	*mlen = len - head - tlen;
	return 1;
}

enum kr_status kr_ks_meta_pattern(const struct kr_keystore_layout *layout, struct kr_buf *out)
{
	enum kr_status rc = KR_OK;

	for (const char *p = layout->meta_key; *p && rc == KR_OK; p++) {
		if (!strncmp(p, KR_ID_PLACEHOLDER, strlen(KR_ID_PLACEHOLDER))) {
			rc = kr_buf_addch(out, '*');
			p += strlen(KR_ID_PLACEHOLDER) - 1;
			continue;
		}
		if (strchr("*?[]\\", *p))
			rc = kr_buf_addch(out, '\\');
		if (rc == KR_OK)
			rc = kr_buf_addch(out, *p);
	}
	return rc;
}

/* ---- repair reports ---- */

void kr_keystore_repair_init(struct kr_keystore_repair *r)
{
	memset(r, 0, sizeof(*r));
}

void kr_keystore_repair_release(struct kr_keystore_repair *r)
{
	free(r->items);
	kr_keystore_repair_init(r);
}

size_t kr_keystore_repair_count(const struct kr_keystore_repair *r)
{
	size_t n = r->marker_fixed ? 1 : 0;

	for (size_t i = 0; i < r->n; i++)
		n += (r->items[i].readded ? 1 : 0) + (r->items[i].fields ? 1 : 0);
	return n;
}

static enum kr_status kr_describe_fields(unsigned fields, struct kr_buf *out)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
	    {KR_META_ID, "id"},
	    {KR_META_CREATED_AT, "created_at"},
	    {KR_META_STATUS, "status"},
	    {KR_META_REVOKED_AT, "revoked_at"},
	    {KR_META_ROTATION, "rotation"},
	};
	const char *sep = "";
	enum kr_status rc = KR_OK;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && rc == KR_OK; i++) {
		if (!(fields & names[i].bit))
			continue;
		rc = kr_buf_addf(out, "%s%s", sep, names[i].name);
		sep = ", ";
	}
	return rc;
}

enum kr_status kr_keystore_repair_describe(const struct kr_keystore_repair *r,
					   const char *active_set, struct kr_buf *out)
{
	const char *sep = "";
	enum kr_status rc = KR_OK;

	for (size_t i = 0; i < r->n && rc == KR_OK; i++) {
		const struct kr_keystore_repair_item *it = &r->items[i];

		if (it->readded) {
			rc = kr_buf_addf(out, "%sre-added key %s", sep, it->id);
			sep = "; ";
		}
		if (rc == KR_OK && it->fields) {
			rc = kr_buf_addf(out, "%srepaired metadata of key %s (", sep, it->id);
			if (rc == KR_OK)
				rc = kr_describe_fields(it->fields, out);
			if (rc == KR_OK)
				rc = kr_buf_adds(out, ")");
			sep = "; ";
		}
	}
	if (rc == KR_OK && r->marker_fixed) {
		rc = kr_buf_addf(out, "%sset bootstrap marker", sep);
		sep = "; ";
	}
	if (rc == KR_OK && !*sep)
		rc = kr_buf_adds(out, "in sync");
	if (rc == KR_OK && r->unknown_members > 0)
		rc = kr_buf_addf(out, "; %lld member%s of %s not known here (left in place)",
				 r->unknown_members, r->unknown_members == 1 ? "" : "s",
				 active_set ? active_set : "activeSet");
	return rc;
}
