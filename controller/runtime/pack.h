/* pack.h - text kept compressed in memory: zlib deflate with a preset dictionary. */
#ifndef KR_PACK_H
#define KR_PACK_H

#include <stdbool.h>
#include <stddef.h>

/*
 * An informer keeps one projection per object for as long as the object exists; a
 * KeyRotation's is the whole object (a reconcile reads it from the cache, not with a GET),
 * a kilobyte or two of JSON each. Packed with a dictionary of the words such a text is made
 * of, it takes a third to a quarter of that (tests/unit/test_pack.c measures it).
 *
 * A packed text is one malloc'd block: a header (the text's length, whether it is
 * deflated) and the bytes. Packing is deterministic, so two packs of one text with one
 * dictionary are equal byte for byte (kr_pack_equal), and a text that deflate would not
 * shrink is kept as it is. Both directions are bounded: a text longer than KR_PACK_MAX is
 * refused, and unpacking never writes more than the header's length.
 */
#define KR_PACK_MAX (16u << 20)

struct kr_pack_dict {
	const char *data; /* the preset dictionary (the most common strings last) */
	size_t len;	  /* at most 4 KiB are used: the window */
};

/* `text` packed with `dict` (NULL: none); NULL on ENOMEM or a text over KR_PACK_MAX. */
char *kr_pack(const char *text, const struct kr_pack_dict *dict);
/* The text back, NUL-terminated and malloc'd; NULL on ENOMEM or a damaged pack. */
char *kr_unpack(const char *pack, const struct kr_pack_dict *dict);
/* Bytes the pack takes (header included). */
size_t kr_pack_size(const char *pack);
/* Same text (packed with the same dictionary). NULL equals only NULL. */
bool kr_pack_equal(const char *a, const char *b);

#endif
