/* text.c - text from outside made safe to quote in a status, an Event or a log line. */
#include <stddef.h>
#include <string.h>

#include "base/text.h"

/* The length of the escape sequence at `s` (s[0] is ESC), never past the NUL. */
static size_t sz_escape(const unsigned char *s)
{
	size_t i = 1;

	if (s[1] == '[') { /* CSI: parameters, intermediates, one final byte */
		for (i = 2; s[i] >= 0x20 && s[i] <= 0x3f; i++)
			;
		for (; s[i] >= 0x20 && s[i] <= 0x2f; i++)
			;
		return s[i] >= 0x40 && s[i] <= 0x7e ? i + 1 : i;
	}
	if (s[1] == ']' || s[1] == 'P' || s[1] == '_' || s[1] == '^' || s[1] == 'X') {
		/* OSC, DCS, APC, PM, SOS: up to BEL or ESC '\' */
		for (i = 2; s[i] && s[i] != 0x07; i++)
			if (s[i] == 0x1b && s[i + 1] == '\\')
				return i + 2;
		return s[i] ? i + 1 : i;
	}
	return s[1] >= 0x20 && s[1] <= 0x7e ? 2 : 1;
}

/* The length of the valid UTF-8 sequence at `s` (s[0] >= 0x80), or 0. */
static size_t sz_utf8(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* C1 controls, line/paragraph separators and bidi controls: text that moves text around. */
static int sz_unwanted(const unsigned char *s, size_t n)
{
	if (n == 2)
		return s[0] == 0xc2 && s[1] < 0xa0;
	if (n == 3 && s[0] == 0xe2 && s[1] == 0x80)
		return s[2] >= 0xa8 && s[2] <= 0xae; /* U+2028..U+202E */
	if (n == 3 && s[0] == 0xe2 && s[1] == 0x81)
		return s[2] >= 0xa6 && s[2] <= 0xa9; /* U+2066..U+2069 */
	return 0;
}

void kr_text_sanitize(char *text)
{
	unsigned char *r = (unsigned char *)text, *w = (unsigned char *)text;

	if (!text)
		return;
	while (*r) {
		size_t n = 1;

		if (*r == 0x1b)
			n = sz_escape(r);
		else if (*r >= 0x80)
			n = sz_utf8(r);
		if (*r >= 0x20 && *r < 0x7f) {
			*w++ = *r++;
		} else if (*r >= 0x80 && n && !sz_unwanted(r, n)) {
			memmove(w, r, n);
			w += n;
			r += n;
		} else {
			*w++ = '?';
			r += n ? n : 1;
		}
	}
	*w = '\0';
}

const char *kr_text_token(const char *token)
{
	size_t n = 0;

	if (!token)
		return NULL;
	for (; token[n]; n++)
		if (n >= 32 || !((token[n] >= 'a' && token[n] <= 'z') || token[n] == '_'))
			return NULL;
	return n ? token : NULL;
}
