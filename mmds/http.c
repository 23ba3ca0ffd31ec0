// SPDX-License-Identifier: Apache-2.0
/*
 * mmds/http.c: the guest's side of the metadata service, above TCP: one
 * HTTP/1.x request parsed from bytes the guest sent (nothing trusted:
 * every length is checked against what is in the buffer, the request is
 * bounded by MMDS_HTTP_MAX_REQUEST), and its answer built from the store
 * with the rules of Firecracker's mmds/mod.rs convert_to_response(): GET
 * reads the store (JSON with "Accept: application/json", else IMDS text),
 * PUT is only for the V2 token path, other methods are 405.
 */
#include "mmds/mmds_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* the header `name` (case-insensitive) at line[0..n), its value trimmed */
static bool header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
	size_t k = strlen(name);

	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return false;
	line += k + 1;
	n -= k + 1;
	while (n && (*line == ' ' || *line == '\t'))
		line++, n--;
	while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	*val = line;
	*vlen = n;
	return true;
}

static void take_header(struct mmds_http_req *r, const char *line, size_t n)
{
	const char *v;
	size_t vl;

	if (header_is(line, n, "Accept", &v, &vl))
		r->fmt = vl == 16 && !strncasecmp(v, "application/json", 16) ? MMDS_FMT_JSON
		                                                             : MMDS_FMT_IMDS;
	else if (header_is(line, n, "X-metadata-token", &v, &vl) ||
	         header_is(line, n, "X-aws-ec2-metadata-token", &v, &vl))
		r->token = v, r->token_len = vl;
	else if (header_is(line, n, "X-metadata-token-ttl-seconds", &v, &vl) ||
	         header_is(line, n, "X-aws-ec2-metadata-token-ttl-seconds", &v, &vl))
		r->ttl = v, r->ttl_len = vl;
	else if (header_is(line, n, "X-Forwarded-For", &v, &vl))
		r->forwarded = true;
	else if (header_is(line, n, "Content-Length", &v, &vl))
		r->has_body = vl != 1 || v[0] != '0';
}

/* "METHOD SP URI SP HTTP/1.x" */
static int request_line(struct mmds_http_req *r, const char *line, size_t n)
{
	const char *sp1 = memchr(line, ' ', n), *sp2;

	if (!sp1 || sp1 == line || (size_t)(sp1 - line) >= sizeof(r->method))
		return -EINVAL;
	memcpy(r->method, line, (size_t)(sp1 - line));
	r->method[sp1 - line] = '\0';
	sp2 = memchr(sp1 + 1, ' ', (size_t)(line + n - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return -EINVAL;
	r->uri = sp1 + 1;
	r->uri_len = (size_t)(sp2 - sp1 - 1);
	if ((size_t)(line + n - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return -EINVAL;
	/* the query string is not part of the path */
	const char *q = memchr(r->uri, '?', r->uri_len);
	if (q)
		r->uri_len = (size_t)(q - r->uri);
	return 0;
}

int mmds_http_parse(const char *buf, size_t len, struct mmds_http_req *r)
{
	size_t pos = 0;
	bool first = true;

	memset(r, 0, sizeof(*r));
	r->fmt = MMDS_FMT_IMDS; /* micro_http's default Accept */
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		if (!nl)
			break;
		size_t n = (size_t)(nl - (buf + pos));
		const char *line = buf + pos;
		if (n && line[n - 1] == '\r')
			n--;
		pos = (size_t)(nl - buf) + 1;
		if (first) {
			if (request_line(r, line, n) < 0)
				return -EINVAL;
			first = false;
		} else if (n == 0) {
			r->total = pos;
			/* MMDS requests carry no body; one is not waited for */
			return r->has_body ? -EINVAL : 1;
		} else {
			take_header(r, line, n);
		}
	}
	return len >= MMDS_HTTP_MAX_REQUEST ? -E2BIG : 0;
}

/* the path, its runs of '/' as one (Firecracker's sanitize_uri), equals `want` */
static bool mmds_path_is(const char *p, size_t n, const char *want)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '/' && i && p[i - 1] == '/')
			continue;
		if (want[k] == '\0' || want[k] != p[i]) /* a NUL from the guest ends nothing */
			return false;
		k++;
	}
	return want[k] == '\0';
}

static int answer(char **out, size_t *out_len, int status, const char *reason, enum mmds_format fmt,
                  const char *body, size_t blen, const char *extra)
{
	const char *ctype = fmt == MMDS_FMT_JSON ? "application/json" : "text/plain";
	int n = asprintf(out,
	                 "HTTP/1.1 %d %s\r\nServer: kiln MMDS\r\nContent-Type: %s\r\n%s"
	                 "Content-Length: %zu\r\n\r\n%.*s",
	                 status, reason, ctype, extra ? extra : "", blen, (int)blen, body);
	if (n < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	*out_len = (size_t)n;
	return 0;
}

static int text(char **out, size_t *out_len, int status, const char *reason, const char *msg,
                const char *extra)
{
	return answer(out, out_len, status, reason, MMDS_FMT_IMDS, msg, strlen(msg), extra);
}

static int respond_get(struct mmds *m, const struct mmds_http_req *r, char **out, size_t *len)
{
	char *body = NULL, msg[160];
	size_t blen = 0;
	int ret;

	if (mmds_version(m) == MMDS_V2) {
		if (!r->token)
			return text(
			        out, len, 401, "Unauthorized",
			        "No MMDS token provided. Use `X-metadata-token` or "
			        "`X-aws-ec2-metadata-token` header to specify the session token.",
			        NULL);
		if (!mmds_token_valid(m, r->token, r->token_len))
			return text(out, len, 401, "Unauthorized", "MMDS token not valid.", NULL);
	}
	ret = mmds_lookup(m, r->uri, r->uri_len, r->fmt, &body, &blen);
	if (ret == -ENOENT) {
		snprintf(msg, sizeof(msg), "Resource not found: %.*s.",
		         (int)(r->uri_len > 100 ? 100 : r->uri_len), r->uri);
		return text(out, len, 404, "Not Found", msg, NULL);
	}
	if (ret == -ENOTSUP)
		return text(out, len, 501, "Not Implemented",
		            "Cannot retrieve value. The value has an unsupported type.", NULL);
	if (ret < 0)
		return ret;
	ret = answer(out, len, 200, "OK", mmds_imds_compat(m) ? MMDS_FMT_IMDS : r->fmt, body, blen,
	             NULL);
	free(body);
	return ret;
}

static int respond_put(struct mmds *m, const struct mmds_http_req *r, char **out, size_t *len)
{
	char tok[MMDS_TOKEN_MAX + 1], hdr[96], msg[160];
	unsigned long ttl = 0;

	if (r->forwarded)
		return text(out, len, 400, "Bad Request", "Invalid header: X-Forwarded-For.", NULL);
	if (!mmds_path_is(r->uri, r->uri_len, "/latest/api/token")) {
		snprintf(msg, sizeof(msg), "Resource not found: %.*s.",
		         (int)(r->uri_len > 100 ? 100 : r->uri_len), r->uri);
		return text(out, len, 404, "Not Found", msg, NULL);
	}
	if (!r->ttl)
		return text(
		        out, len, 400, "Bad Request",
		        "Token time to live value not found. Use `X-metadata-token-ttl-seconds` "
		        "or `X-aws-ec2-metadata-token-ttl-seconds` header to specify the token's "
		        "lifetime.",
		        NULL);
	for (size_t i = 0; i < r->ttl_len; i++)
		if (r->ttl[i] < '0' || r->ttl[i] > '9' || ttl > 0xffffffffUL / 10 ||
		    (ttl = ttl * 10 + (unsigned long)(r->ttl[i] - '0')) > 0xffffffffUL)
			ttl = ~0UL;
	if (r->ttl_len == 0 || ttl == ~0UL)
		return text(out, len, 400, "Bad Request", "Invalid value for the token's TTL.",
		            NULL);
	if (ttl < MMDS_TOKEN_TTL_MIN || ttl > MMDS_TOKEN_TTL_MAX) {
		snprintf(msg, sizeof(msg),
		         "Invalid time to live value provided for token: %lu. Please provide a "
		         "value between %u and %u.",
		         ttl, MMDS_TOKEN_TTL_MIN, MMDS_TOKEN_TTL_MAX);
		return text(out, len, 400, "Bad Request", msg, NULL);
	}
	if (mmds_token_new(m, (uint32_t)ttl, tok) < 0)
		return text(out, len, 500, "Internal Server Error", "Failed to make a token.",
		            NULL);
	snprintf(hdr, sizeof(hdr), "X-metadata-token-ttl-seconds: %lu\r\n", ttl);
	return answer(out, len, 200, "OK", MMDS_FMT_IMDS, tok, strlen(tok), hdr);
}

int mmds_http_respond(struct mmds *m, const struct mmds_http_req *r, char **out, size_t *out_len)
{
	if (r->uri_len == 0)
		return text(out, out_len, 400, "Bad Request", "Invalid URI.", NULL);
	if (strcmp(r->method, "GET") == 0)
		return respond_get(m, r, out, out_len);
	if (strcmp(r->method, "PUT") == 0)
		return respond_put(m, r, out, out_len);
	return text(out, out_len, 405, "Method Not Allowed", "Not allowed HTTP method.",
	            "Allow: GET, PUT\r\n");
}
