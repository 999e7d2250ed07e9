/* text.h - text from outside (a server, a file) made safe to quote in a message. */
#ifndef KR_TEXT_H
#define KR_TEXT_H

/*
 * Make text from outside safe for a message, in place: an ESC sequence (ESC [ ... final,
 * ESC ] ... BEL/ST, or ESC and one byte) becomes one '?', and so does every other byte
 * below 0x20, 0x7f, a C1 control (U+0080..U+009F), a line or paragraph separator or bidi
 * control (U+2028..U+202E, U+2066..U+2069) and any byte that is not valid UTF-8.
 * NULL-safe. The text never grows. (text.c)
 */
void kr_text_sanitize(char *s);

/*
 * `token` if it is a short lower-case identifier ([a-z_]{1,32}, as Prometheus's
 * errorType "bad_data"), else NULL: the only kind of server-sent text a message may quote.
 */
const char *kr_text_token(const char *token);

#endif
