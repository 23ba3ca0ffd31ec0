// SPDX-License-Identifier: Apache-2.0
/*
 * api/http.c: the libmicrohttpd glue and nothing else. kiln binds the unix
 * socket itself and hands it to MHD (MHD_OPTION_LISTEN_SOCKET); MHD runs
 * one internal epoll thread. Per request:
 *   1. headers in: a Content-Length above the limit is answered at once
 *      only when the client waits for it (Expect: 100-continue) or the
 *      length passes API_DISCARD_MAX; other oversized bodies are read;
 *   2. body chunks: copied up to the limit; past it they are only counted
 *      (the answer is the 400 once all is in, so that a client that sends
 *      its whole body before reading gets it), and past API_DISCARD_MAX
 *      the connection is dropped;
 *   3. body complete: api_route() parses it; a bad request is answered
 *      right away, a good one is posted to the VMM thread and the
 *      connection suspended, so a slow action never blocks other clients;
 *   4. the VMM thread completes the action and calls done(), which resumes
 *      the connection; MHD calls the handler again and it answers.
 * The request object is shared by the connection and the queue, with one
 * reference each; req_lock guards the references, the state and the
 * connection pointer, since done() may run after the connection is gone
 * (shutdown) and must then not touch MHD.
 */
#define LOG_MODULE "api"
#include "api/api.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/http_int.h"

#define API_CONN_TIMEOUT_S 10         /* idle or half-sent requests are dropped after this */
#define API_CONN_LIMIT     512        /* concurrent connections, suspended ones included */
#define API_DISCARD_MAX    (1u << 20) /* oversized chunked body: drop the connection here */

struct api_server {
	struct MHD_Daemon *mhd;
	char *path;
	dev_t dev; /* of the socket file we bound, to remove only ours */
	ino_t ino;
	size_t max_payload;
	struct api_queue *queue;
	bool stopping;           /* under req_lock */
	int abandoned;           /* requests stop() resumed and MHD has not finished, req_lock */
	struct api_req *waiting; /* suspended requests, under req_lock */
};

enum req_state { REQ_RECEIVING, REQ_QUEUED, REQ_DONE };

struct api_req {
	struct api_action a;
	struct MHD_Connection *conn; /* NULL once MHD has finished with the request */
	enum req_state state;
	bool suspended;
	bool abandoned; /* resumed by api_server_stop(), answered 503 */
	int refs;
	struct api_req *prev, *next; /* in server->waiting while suspended */
	char *body;
	size_t len, cap;
	uint64_t received; /* body bytes seen, kept or not */
};

static pthread_mutex_t req_lock = PTHREAD_MUTEX_INITIALIZER;

static void stat_inc(uint64_t *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

/* called with req_lock held; true when this was the last reference */
static bool req_put_locked(struct api_req *r)
{
	return --r->refs == 0;
}

static void req_free(struct api_req *r)
{
	api_action_release(&r->a);
	free(r->body);
	free(r);
}

static void unlink_waiting(struct api_server *s, struct api_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else if (s->waiting == r)
		s->waiting = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

/* ----------------------------------------------------------- responses */

static enum MHD_Result respond_dep(struct MHD_Connection *c, unsigned status, char *json,
                                   bool deprecated)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (json)
		resp = MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
	else
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(json);
		return MHD_NO;
	}
	if (json)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (deprecated) /* micro_http's Response::set_deprecation() */
		MHD_add_response_header(resp, "Deprecation", "true");
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, char *json)
{
	return respond_dep(c, status, json, false);
}

static enum MHD_Result respond_fault(struct MHD_Connection *c, unsigned status, const char *msg)
{
	return respond(c, status, api_fault_json(msg));
}

/* counts an answered request of kind `k` (API_ACTION_COUNT: no kind) */
static void count(enum api_action_kind k, unsigned status)
{
	if ((unsigned)k >= API_ACTION_COUNT)
		return;
	stat_inc(&api_stats.count[k]);
	if (status >= 400)
		stat_inc(&api_stats.fails[k]);
}

/*
 * micro_http's RequestError::SizeLimitExceeded, as Firecracker answers it:
 * 400 and its message, under Firecracker's own key "error" and under
 * "fault_message" (its swagger's Error, which its SDKs read). Firecracker's
 * second sentence, "All previous unanswered requests will be dropped.", is
 * left out: kiln drops none.
 */
static enum MHD_Result respond_too_large(struct api_server *s, struct MHD_Connection *c,
                                         uint64_t size)
{
	char msg[160];
	char *json;

	stat_inc(&api_stats.too_large);
	snprintf(msg, sizeof(msg),
	         "Request payload with size %llu is larger than the limit of %zu allowed by "
	         "server.",
	         (unsigned long long)size, s->max_payload);
	log_info("refused a request body of %llu bytes", (unsigned long long)size);
	json_t *o = json_pack("{s:s, s:s}", "fault_message", msg, "error", msg);
	json = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!json)
		return MHD_NO;
	return respond(c, 400, json);
}

/* ------------------------------------------------------------ handlers */

/* VMM thread (or whoever drains the queue): the action has its result */
static void on_action_done(struct api_action *a)
{
	struct api_req *r = (struct api_req *)a; /* `a` is the first member */
	struct api_server *s = a->done_opaque;
	bool last;

	pthread_mutex_lock(&req_lock);
	r->state = REQ_DONE;
	if (r->suspended) {
		r->suspended = false;
		unlink_waiting(s, r);
		MHD_resume_connection(r->conn);
	}
	last = req_put_locked(r);
	pthread_mutex_unlock(&req_lock);
	if (last)
		req_free(r);
}

/* the whole request is in: route it, then answer or hand it to the VMM */
static enum MHD_Result dispatch(struct api_server *s, struct api_req *r, struct MHD_Connection *c,
                                const char *url, const char *method)
{
	struct errbuf e = {{0}};
	int ret;

	if (r->received > s->max_payload)
		return respond_too_large(s, c, r->received);
	ret = api_route(method, url, r->body, r->len, &r->a, &e);
	if (ret < 0) {
		unsigned status = (unsigned)api_route_status(ret);
		if (ret == -ENOENT)
			stat_inc(&api_stats.not_found);
		else if (ret == -ENOTSUP)
			stat_inc(&api_stats.bad_method);
		else
			stat_inc(&api_stats.bad_request);
		count(r->a.kind, status);
		log_info("%.16s %.256s: %u %s", method, url, status, e.msg);
		return respond_fault(c, status, e.msg);
	}
	free(r->body);
	r->body = NULL;
	r->a.done = on_action_done;
	r->a.done_opaque = s;

	pthread_mutex_lock(&req_lock);
	if (s->stopping) {
		pthread_mutex_unlock(&req_lock);
		return respond_fault(c, 503, "kiln is shutting down");
	}
	/* suspend before posting: done() may run before this handler returns */
	MHD_suspend_connection(c);
	r->suspended = true;
	r->state = REQ_QUEUED;
	r->refs++;
	r->next = s->waiting;
	if (s->waiting)
		s->waiting->prev = r;
	s->waiting = r;
	pthread_mutex_unlock(&req_lock);
	api_queue_post(s->queue, &r->a);
	return MHD_YES;
}

/* the connection was resumed: by done(), or by api_server_stop() before it */
static enum MHD_Result answer(struct api_req *r, struct MHD_Connection *c)
{
	enum req_state st;
	char *json = NULL;

	pthread_mutex_lock(&req_lock);
	st = r->state;
	pthread_mutex_unlock(&req_lock);
	if (st != REQ_DONE)
		return respond_fault(c, 503, "kiln is shutting down");
	count(r->a.kind, (unsigned)r->a.status);
	if (r->a.deprecation) {
		stat_inc(&api_stats.deprecated);
		log_warn("%s", r->a.deprecation);
	}
	if (r->a.status >= 400 || r->a.status < 200)
		return respond_dep(c, r->a.status >= 400 ? (unsigned)r->a.status : 500,
		                   api_fault_json(r->a.fault[0] ? r->a.fault : "internal error"),
		                   r->a.deprecation);
	if (r->a.status != 204) {
		/* any JSON value: GET /mmds answers the store, which may be a string */
		json = r->a.reply ? json_dumps(r->a.reply, JSON_COMPACT | JSON_ENCODE_ANY)
		                  : strdup("{}");
		if (!json)
			return respond_fault(c, 500, "out of memory");
	}
	return respond_dep(c, (unsigned)r->a.status, json, r->a.deprecation);
}

/* a piece of the body: keep it while under the limit, then only count it */
static enum MHD_Result receive(struct api_server *s, struct api_req *r, const char *data,
                               size_t *size)
{
	size_t n = *size;

	*size = 0;
	r->received += n;
	if (r->received > s->max_payload) {
		free(r->body);
		r->body = NULL;
		r->len = r->cap = 0;
		if (r->received > API_DISCARD_MAX) {
			stat_inc(&api_stats.too_large);
			log_info("dropped a connection whose request body passed %u bytes",
			         API_DISCARD_MAX);
			return MHD_NO;
		}
		return MHD_YES;
	}
	if (r->len + n > r->cap) {
		size_t cap = r->cap ? r->cap : 1024;
		while (cap < r->len + n)
			cap *= 2;
		if (cap > s->max_payload)
			cap = s->max_payload;
		char *b = realloc(r->body, cap);
		if (!b)
			return MHD_NO;
		r->body = b;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	return MHD_YES;
}

/*
 * First call, headers only. A declared body above the limit is refused
 * unread only when the client waits for our word before sending it
 * (Expect: 100-continue) or when it passes API_DISCARD_MAX; any other is
 * read and discarded (receive()) and refused once complete (dispatch()):
 * answering and closing while the client still sends would reset its
 * connection before it reads the 400 (EPIPE on its writes), which is not
 * what Firecracker's clients expect.
 */
static enum MHD_Result on_headers(struct api_server *s, struct api_req *r, struct MHD_Connection *c)
{
	const char *cl =
	        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *expect =
	        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
	unsigned long long n;
	char *end;

	(void)r;
	if (!cl)
		return MHD_YES;
	errno = 0;
	n = strtoull(cl, &end, 10);
	if (errno == 0 && end != cl && n <= s->max_payload)
		return MHD_YES;
	if (errno == 0 && end != cl && n <= API_DISCARD_MAX &&
	    !(expect && strcasecmp(expect, "100-continue") == 0))
		return MHD_YES; /* read it, then answer */
	/* MHD refuses malformed lengths itself; this is a too-large one */
	return respond_too_large(s, c, errno ? UINT64_MAX : n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	struct api_server *s = cls;
	struct api_req *r = *req_cls;

	(void)version;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->conn = c;
		r->refs = 1;
		r->a.kind = API_ACTION_COUNT;
		*req_cls = r;
		return on_headers(s, r, c);
	}
	if (*upload_data_size)
		return receive(s, r, upload_data, upload_data_size);
	if (r->state == REQ_RECEIVING)
		return dispatch(s, r, c, url, method);
	return answer(r, c);
}

/* MHD is done with the request (answered, client gone, or shutdown) */
/*
 * libmicrohttpd's thread loads the API filter when its first client
 * arrives, before it reads a byte of a request.
 */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode what)
{
	static __thread bool confined;
	(void)cls, (void)c, (void)socket_ctx;
	if (what == MHD_CONNECTION_NOTIFY_STARTED && !confined) {
		confined = true;
		confine_thread(THREAD_API);
	}
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct api_server *s = cls;
	struct api_req *r = *req_cls;
	bool last;

	(void)c;
	(void)toe;
	if (!r)
		return;
	*req_cls = NULL;
	pthread_mutex_lock(&req_lock);
	r->conn = NULL;
	if (r->abandoned)
		s->abandoned--;
	if (r->suspended) { /* cannot happen: stop resumes first; stay safe */
		r->suspended = false;
		unlink_waiting(s, r);
	}
	last = req_put_locked(r);
	pthread_mutex_unlock(&req_lock);
	if (last)
		req_free(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("libmicrohttpd: %s", buf);
}

/* -------------------------------------------------------- start / stop */

int api_server_start(const struct api_server_config *cfg, struct api_server **out, struct errbuf *e)
{
	struct api_server *s;
	struct stat st;
	int fd, ret;

	if (!cfg || !out || !cfg->socket_path || !cfg->queue)
		return errf(e, EINVAL, "api_server_start: socket path and queue are required");
	s = calloc(1, sizeof(*s));
	if (!s)
		return errf(e, ENOMEM, "out of memory");
	s->max_payload = cfg->max_payload ? cfg->max_payload : API_MAX_PAYLOAD_DEFAULT;
	s->queue = cfg->queue;
	s->path = strdup(cfg->socket_path);
	if (!s->path) {
		ret = errf(e, ENOMEM, "out of memory");
		goto err_free;
	}
	fd = api_bind_unix(s->path, &st, e);
	if (fd < 0) {
		ret = fd;
		goto err_free;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	/* the logger is the first option, or MHD reports option errors on stderr */
	s->mhd = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	                MHD_USE_ERROR_LOG,
	        0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned)API_CONN_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONN_LIMIT,
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
	        on_connection, NULL, MHD_OPTION_END);
	if (!s->mhd) {
		ret = errf(e, EIO, "cannot start the HTTP server on %s (libmicrohttpd refused)",
		           s->path);
		goto err_close;
	}
	*out = s;
	return 0;

err_close:
	close(fd);
	unlink(s->path);
err_free:
	free(s->path);
	free(s);
	return ret;
}

void api_server_stop(struct api_server *s)
{
	struct api_req *r;
	struct stat st;

	if (!s)
		return;
	/* MHD must not stop with suspended connections: resume them; they answer 503 */
	pthread_mutex_lock(&req_lock);
	s->stopping = true;
	while ((r = s->waiting) != NULL) {
		unlink_waiting(s, r);
		r->suspended = false;
		r->abandoned = true;
		s->abandoned++;
		MHD_resume_connection(r->conn);
	}
	pthread_mutex_unlock(&req_lock);
	/* give their clients the 503 (for up to a second) before closing everything */
	for (int i = 0; i < 100; i++) {
		pthread_mutex_lock(&req_lock);
		int left = s->abandoned;
		pthread_mutex_unlock(&req_lock);
		if (!left)
			break;
		usleep(10000);
	}
	MHD_stop_daemon(s->mhd); /* joins its thread, closes the listening socket */
	if (stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s->path);
	free(s);
}
