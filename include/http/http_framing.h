/*
 * http_framing.h - an independent check of HTTP/1.1 request framing.
 *
 * libevent 2.1's evhttp parses requests leniently: it takes the first of
 * several Content-Length headers, accepts "+2", joins obs-folded lines into
 * the previous header, ignores a body on HEAD and TRACE, frames a request
 * by a Transfer-Encoding other than exactly "chunked" with Content-Length
 * instead, and matches header names only exactly (so "Content-Length : 5"
 * is no Content-Length at all).  A proxy in front that frames the same
 * bytes by RFC 9112 then sees a different request boundary, and the bytes
 * in between run as a second, smuggled request.
 *
 * The server therefore feeds every byte a client sends through this state
 * machine before evhttp parses it.  It follows requests the way evhttp
 * frames them (body methods GET POST PUT DELETE PATCH OPTIONS CONNECT,
 * chunked or Content-Length) and stops at the first byte where evhttp and
 * a strict RFC 9112 reader could disagree, or that is malformed anyway:
 *   - Content-Length repeated, not 1*DIGIT (a sign, a list, empty), or too long;
 *   - Transfer-Encoding other than one "chunked" header, together with
 *     Content-Length, in an HTTP/1.0 request, or on a method evhttp reads no
 *     body for; a Content-Length above 0 on such a method;
 *   - obs-fold, a header name that is not a token (white space before ':'),
 *     a bare CR, a NUL, an empty line before the request line;
 *   - a chunk size that is not 1*HEXDIG (optionally followed by spaces),
 *     chunk data not followed by CRLF, trailer fields.
 * The server answers such a request 400 and closes the connection.
 *
 * Pure and allocation-free: the state is a small struct, the input any
 * split of the byte stream (feeding byte by byte gives the same result).
 */
#ifndef NC_HTTP_FRAMING_H
#define NC_HTTP_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_framer {
	uint8_t st;              /* state (http_framing.c) */
	uint8_t name_len;        /* header name bytes kept (lower case) */
	uint8_t val_len;         /* value bytes kept (Content-Length / Transfer-Encoding) */
	uint8_t method_len;
	uint8_t hdr_kind;        /* 0 other, 1 Content-Length, 2 Transfer-Encoding */
	uint8_t cl_count, te_count;
	bool cl_bad, te_bad, val_overflow, name_long, http10;
	uint8_t chunk_digits;
	char method[12];
	char name[20];
	char val[24];
	char tail[8];            /* last bytes of the request line ("HTTP/1.0") */
	uint64_t cl;             /* Content-Length value */
	uint64_t remaining;      /* body or chunk bytes still to skip */
	unsigned requests;       /* requests begun on this connection */
	const char *error;       /* why framing failed (static text), or NULL */
};

void http_framer_init(struct http_framer *f);

/*
 * Feed the next n bytes the client sent.  0 while the framing is sound;
 * -1 from the first violation on (f->error says why; the request that
 * broke it is number f->requests - 1, counting from 0).  Later input is
 * ignored.
 */
int http_framer_feed(struct http_framer *f, const char *p, size_t n);

#endif
