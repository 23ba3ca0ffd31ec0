// SPDX-License-Identifier: Apache-2.0
/*
 * api/mhd_notls.c: lets kiln link libmicrohttpd statically without its TLS
 * back end.
 *
 * kiln serves plain HTTP on a unix socket and never passes MHD_USE_TLS, so
 * libmicrohttpd's TLS paths are unreachable; but its static archive still
 * names GnuTLS symbols, and linking GnuTLS (with p11-kit, nettle, gmp,
 * libunistring, ...) costs about 2.2 MiB of RSS and its library constructor
 * reads system configuration at every start. Only the global init/deinit
 * pair is called (from libmicrohttpd's own constructor) and succeeds; every
 * other entry point reports that TLS is not built in. meson's
 * -Dmhd_static=false links the shared libmicrohttpd instead.
 */
#include <stddef.h>
#include <stdlib.h>

#define GNUTLS_E_UNIMPLEMENTED_FEATURE (-1250)

/* GnuTLS's allocation hooks are variables, not functions */
void *(*gnutls_malloc)(size_t) = malloc;

int gnutls_global_init(void)
{
	return 0;
}

void gnutls_global_deinit(void)
{
}

const char *gnutls_strerror(int err)
{
	(void)err;
	return "TLS is not built into kiln";
}

void *gnutls_session_get_ptr(void *session)
{
	(void)session;
	return NULL;
}

/* entry points without a result */
#define NOTLS_VOID(name)                                                                           \
	void name(void);                                                                           \
	void name(void)                                                                            \
	{                                                                                          \
	}
/* entry points that return a GnuTLS error code */
#define NOTLS_ERR(name)                                                                            \
	int name(void);                                                                            \
	int name(void)                                                                             \
	{                                                                                          \
		return GNUTLS_E_UNIMPLEMENTED_FEATURE;                                             \
	}

NOTLS_VOID(gnutls_session_set_ptr)
NOTLS_VOID(gnutls_transport_set_int2)
NOTLS_VOID(gnutls_deinit)
NOTLS_VOID(gnutls_priority_deinit)
NOTLS_VOID(gnutls_dh_params_deinit)
NOTLS_VOID(gnutls_certificate_free_credentials)
NOTLS_VOID(gnutls_psk_free_server_credentials)
NOTLS_VOID(gnutls_certificate_server_set_request)
NOTLS_VOID(gnutls_certificate_set_retrieve_function2)
NOTLS_VOID(gnutls_certificate_set_retrieve_function3)
NOTLS_VOID(gnutls_psk_set_server_credentials_function)

NOTLS_ERR(gnutls_alpn_set_protocols)
NOTLS_ERR(gnutls_bye)
NOTLS_ERR(gnutls_certificate_allocate_credentials)
NOTLS_ERR(gnutls_certificate_set_dh_params)
NOTLS_ERR(gnutls_certificate_set_x509_key_mem)
NOTLS_ERR(gnutls_certificate_set_x509_key_mem2)
NOTLS_ERR(gnutls_certificate_set_x509_trust_mem)
NOTLS_ERR(gnutls_cipher_get)
NOTLS_ERR(gnutls_credentials_set)
NOTLS_ERR(gnutls_dh_params_import_pkcs3)
NOTLS_ERR(gnutls_dh_params_init)
NOTLS_ERR(gnutls_handshake)
NOTLS_ERR(gnutls_init)
NOTLS_ERR(gnutls_priority_init)
NOTLS_ERR(gnutls_priority_set)
NOTLS_ERR(gnutls_protocol_get_version)
NOTLS_ERR(gnutls_psk_allocate_server_credentials)
NOTLS_ERR(gnutls_record_check_pending)
NOTLS_ERR(gnutls_record_get_direction)
NOTLS_ERR(gnutls_record_recv)
NOTLS_ERR(gnutls_record_send)
