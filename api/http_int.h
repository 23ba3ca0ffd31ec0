/* SPDX-License-Identifier: Apache-2.0 */
/* api/http_int.h: private to api/http.c and api/socket.c. */
#ifndef KILN_API_HTTP_INT_H
#define KILN_API_HTTP_INT_H

#include "common/common.h"

#include <sys/stat.h>

/*
 * Creates a listening AF_UNIX stream socket (non-blocking, close-on-exec)
 * bound at `path`. An existing socket file nobody accepts on (connect()
 * says ECONNREFUSED) is stale and replaced; a live socket, or a file that
 * is not a socket, is an error. *st receives the bound file's stat, so the
 * owner removes only its own file later. The fd, or -errno with a message.
 */
int api_bind_unix(const char *path, struct stat *st, struct errbuf *e);

#endif
