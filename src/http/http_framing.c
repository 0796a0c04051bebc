/*
 * http_framing.c - strict HTTP/1.1 request framing check (see http_framing.h).
 *
 * A byte-at-a-time state machine over request line and header bytes; body
 * and chunk data are skipped by count.  It keeps only what framing needs:
 * the method, whether the version is HTTP/1.0, and the values of
 * Content-Length and Transfer-Encoding.
 */
#include "http/http_framing.h"

#include <string.h>
#include <strings.h>

enum {
	F_START,        /* before a request line */
	F_METHOD,       /* in the method token */
	F_RL,           /* rest of the request line */
	F_RL_CR,        /* CR seen in the request line */
	F_HDR,          /* start of a header line */
	F_NAME,         /* in a header name */
	F_VALUE,        /* in a header value */
	F_VALUE_CR,     /* CR seen in a header value */
	F_HDR_END_CR,   /* CR of the empty line ending the headers */
	F_BODY,         /* Content-Length body */
	F_CH_SIZE,      /* chunk size digits */
	F_CH_SIZE_WS,   /* spaces after the chunk size */
	F_CH_SIZE_CR,   /* CR ending the chunk size line */
	F_CH_DATA,      /* chunk data */
	F_CH_DATA_END,  /* CRLF after chunk data */
	F_CH_DATA_LF,
	F_TRAILER,      /* after the last chunk: only an empty line */
	F_TRAILER_CR,
	F_DEAD,
};

enum { H_OTHER, H_CL, H_TE };

/* Methods libevent 2.1 reads a body for (evhttp_method_may_have_body). */
static const char *const body_methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
					   "CONNECT"};

static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int fail(struct http_framer *f, const char *why)
{
	f->st = F_DEAD;
	f->error = why;
	return -1;
}

void http_framer_init(struct http_framer *f)
{
	memset(f, 0, sizeof(*f));
	f->st = F_START;
}

static void begin_request(struct http_framer *f)
{
	unsigned n = f->requests + 1;

	memset(f, 0, sizeof(*f));
	f->requests = n;
	f->st = F_METHOD;
}

static bool method_has_body(const struct http_framer *f)
{
	for (size_t i = 0; i < sizeof(body_methods) / sizeof(body_methods[0]); i++)
		if (strlen(body_methods[i]) == f->method_len &&
		    memcmp(body_methods[i], f->method, f->method_len) == 0)
			return true;
	return false;
}

/* The value of the header line just ended, trimmed of optional white space. */
static void trimmed_value(const struct http_framer *f, const char **v, size_t *len)
{
	const char *s = f->val;
	size_t n = f->val_len;

	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	*v = s;
	*len = n;
}

static int end_header_line(struct http_framer *f)
{
	const char *v;
	size_t len;

	trimmed_value(f, &v, &len);
	if (f->hdr_kind == H_CL) {
		uint64_t n = 0;

		if (++f->cl_count > 1)
			return fail(f, "more than one Content-Length");
		if (f->val_overflow || len == 0 || len > 18)
			f->cl_bad = true;
		for (size_t i = 0; i < len && !f->cl_bad; i++) {
			if (v[i] < '0' || v[i] > '9')
				f->cl_bad = true;
			else
				n = n * 10 + (uint64_t)(v[i] - '0');
		}
		if (f->cl_bad)
			return fail(f, "malformed Content-Length");
		f->cl = n;
	} else if (f->hdr_kind == H_TE) {
		if (++f->te_count > 1)
			return fail(f, "more than one Transfer-Encoding");
		if (f->val_overflow || len != 7 || strncasecmp(v, "chunked", 7) != 0)
			return fail(f, "unsupported Transfer-Encoding (only chunked)");
	}
	f->st = F_HDR;
	return 0;
}

static int end_headers(struct http_framer *f)
{
	bool body = method_has_body(f);

	if (f->te_count > 0) {
		if (f->cl_count > 0)
			return fail(f, "both Content-Length and Transfer-Encoding");
		if (f->http10)
			return fail(f, "Transfer-Encoding in an HTTP/1.0 request");
		if (!body)
			return fail(f, "a request body is not allowed with this method");
		f->chunk_digits = 0;
		f->remaining = 0;
		f->st = F_CH_SIZE;
		return 0;
	}
	if (f->cl_count > 0 && f->cl > 0) {
		if (!body)
			return fail(f, "a request body is not allowed with this method");
		f->remaining = f->cl;
		f->st = F_BODY;
		return 0;
	}
	f->st = F_START;
	return 0;
}

static int end_chunk_size(struct http_framer *f)
{
	if (f->remaining == 0) {
		f->st = F_TRAILER;
		return 0;
	}
	f->st = F_CH_DATA;
	return 0;
}

static void keep_tail(struct http_framer *f, char c)
{
	memmove(f->tail, f->tail + 1, sizeof(f->tail) - 1);
	f->tail[sizeof(f->tail) - 1] = c;
}

static int end_request_line(struct http_framer *f)
{
	f->http10 = memcmp(f->tail, "HTTP/1.0", 8) == 0;
	f->st = F_HDR;
	return 0;
}

/* One byte of the request line. */
static int step_request_line(struct http_framer *f, unsigned char c)
{
	switch (f->st) {
	case F_START:
		begin_request(f);
		if (c == '\r' || c == '\n')
			return fail(f, "empty line before the request line");
		/* fall through */
	case F_METHOD:
		if (c == ' ') {
			if (f->method_len == 0)
				return fail(f, "malformed request line");
			f->st = F_RL;
			return 0;
		}
		if (!is_tchar(c))
			return fail(f, "malformed request line");
		/* a longer method keeps its first bytes: too long for any body method */
		if (f->method_len < sizeof(f->method))
			f->method[f->method_len++] = (char)c;
		return 0;
	case F_RL:
		if (c == '\r') {
			f->st = F_RL_CR;
			return 0;
		}
		if (c == '\n')
			return end_request_line(f);
		if (c == '\0')
			return fail(f, "NUL in the request line");
		keep_tail(f, (char)c);
		return 0;
	case F_RL_CR:
		if (c != '\n')
			return fail(f, "bare CR in the request line");
		return end_request_line(f);
	default:
		return -1;
	}
}

/* One byte of the header section. */
static int step_header(struct http_framer *f, unsigned char c)
{
	switch (f->st) {
	case F_HDR:
		if (c == '\r') {
			f->st = F_HDR_END_CR;
			return 0;
		}
		if (c == '\n')
			return end_headers(f);
		if (c == ' ' || c == '\t')
			return fail(f, "obs-fold (a header line starting with white space)");
		if (!is_tchar(c))
			return fail(f, "malformed header field name");
		f->name_len = 0;
		f->name_long = false;
		f->val_len = 0;
		f->val_overflow = false;
		f->st = F_NAME;
		/* fall through */
	case F_NAME:
		if (c == ':') {
			if (!f->name_long && f->name_len == 14 && memcmp(f->name, "content-length", 14) == 0)
				f->hdr_kind = H_CL;
			else if (!f->name_long && f->name_len == 17 &&
				 memcmp(f->name, "transfer-encoding", 17) == 0)
				f->hdr_kind = H_TE;
			else
				f->hdr_kind = H_OTHER;
			f->st = F_VALUE;
			return 0;
		}
		if (!is_tchar(c))
			return fail(f, "malformed header field name");
		if (f->name_len < sizeof(f->name))
			f->name[f->name_len++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
		else
			f->name_long = true;
		return 0;
	case F_VALUE:
		if (c == '\r') {
			f->st = F_VALUE_CR;
			return 0;
		}
		if (c == '\n')
			return end_header_line(f);
		if (c == '\0')
			return fail(f, "NUL in a header value");
		if (f->hdr_kind != H_OTHER) {
			if (f->val_len < sizeof(f->val))
				f->val[f->val_len++] = (char)c;
			else
				f->val_overflow = true;
		}
		return 0;
	case F_VALUE_CR:
		if (c != '\n')
			return fail(f, "bare CR in a header value");
		return end_header_line(f);
	case F_HDR_END_CR:
		if (c != '\n')
			return fail(f, "bare CR after the headers");
		return end_headers(f);
	default:
		return -1;
	}
}

/* One byte of chunked framing (sizes, the CRLF after data, the trailer). */
static int step_chunked(struct http_framer *f, unsigned char c)
{
	switch (f->st) {
	case F_CH_SIZE: {
		int h = hexval(c);

		if (h >= 0) {
			if (++f->chunk_digits > 15)
				return fail(f, "chunk size too large");
			f->remaining = f->remaining * 16 + (uint64_t)h;
			return 0;
		}
		if (f->chunk_digits == 0)
			return fail(f, "malformed chunk size");
		if (c == ' ') {
			f->st = F_CH_SIZE_WS;
			return 0;
		}
		if (c == '\r') {
			f->st = F_CH_SIZE_CR;
			return 0;
		}
		if (c == '\n')
			return end_chunk_size(f);
		return fail(f, "malformed chunk size (no chunk extensions)");
	}
	case F_CH_SIZE_WS:
		if (c == ' ')
			return 0;
		if (c == '\r') {
			f->st = F_CH_SIZE_CR;
			return 0;
		}
		if (c == '\n')
			return end_chunk_size(f);
		return fail(f, "malformed chunk size (no chunk extensions)");
	case F_CH_SIZE_CR:
		if (c != '\n')
			return fail(f, "bare CR in a chunk size line");
		return end_chunk_size(f);
	case F_CH_DATA_END:
		if (c == '\r') {
			f->st = F_CH_DATA_LF;
			return 0;
		}
		if (c == '\n')
			goto next_chunk;
		return fail(f, "chunk data not followed by CRLF");
	case F_CH_DATA_LF:
		if (c != '\n')
			return fail(f, "chunk data not followed by CRLF");
	next_chunk:
		f->chunk_digits = 0;
		f->remaining = 0;
		f->st = F_CH_SIZE;
		return 0;
	case F_TRAILER:
		if (c == '\r') {
			f->st = F_TRAILER_CR;
			return 0;
		}
		if (c == '\n')
			break;
		return fail(f, "trailer fields are not accepted");
	case F_TRAILER_CR:
		if (c != '\n')
			return fail(f, "bare CR after the last chunk");
		break;
	default:
		return -1;
	}
	/* the request is complete */
	f->st = F_START;
	return 0;
}

/* One byte of framing text (not body data). */
static int step(struct http_framer *f, unsigned char c)
{
	switch (f->st) {
	case F_START:
	case F_METHOD:
	case F_RL:
	case F_RL_CR:
		return step_request_line(f, c);
	case F_HDR:
	case F_NAME:
	case F_VALUE:
	case F_VALUE_CR:
	case F_HDR_END_CR:
		return step_header(f, c);
	default:
		return step_chunked(f, c);
	}
}

int http_framer_feed(struct http_framer *f, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (f->st == F_DEAD)
			return -1;
		if (f->st == F_BODY || f->st == F_CH_DATA) {
			size_t take = (uint64_t)(n - i) < f->remaining ? n - i : (size_t)f->remaining;

			i += take;
			f->remaining -= take;
			if (f->remaining == 0)
				f->st = f->st == F_BODY ? F_START : F_CH_DATA_END;
			continue;
		}
		if (step(f, (unsigned char)p[i++]) != 0)
			return -1;
	}
	return f->st == F_DEAD ? -1 : 0;
}
