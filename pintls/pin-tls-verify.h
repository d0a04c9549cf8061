/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined(__PINTLS_H_INSIDE__) && !defined(PIN_TLS_COMPILATION)
#error "Only <pintls/pintls.h> can be included directly."
#endif

#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <pintls/pin-tls-pin-set.h>
#include <pintls/pin-tls-version-macros.h>

G_BEGIN_DECLS

/**
 * PinTlsMode:
 * @PIN_TLS_MODE_PIN_ONLY: a pin match is the whole trust decision. The
 *   server's certificate need not chain to a certificate authority, name the
 *   server or be within its validity dates; self-signed pinned servers work.
 *   This is also the explicit opt-out of host name checks for pinned server
 *   certificates. A pin that matches only an issuing certificate (an
 *   intermediate or a root) is different: that issuer signs certificates
 *   for other servers too, so the server certificate must then name the
 *   server.
 * @PIN_TLS_MODE_CA_AND_PINS: the chain must also validate against a trust
 *   database (the system store by default) for the server identity, as a
 *   browser would check it, and then match a pin.
 *
 * How a server certificate is trusted. Neither mode ever turns pins off.
 */
typedef enum
{
  PIN_TLS_MODE_PIN_ONLY,
  PIN_TLS_MODE_CA_AND_PINS,
} PinTlsMode;

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_verify_chain (PinTlsPinSet            *pins,
                               const gnutls_datum_t    *chain,
                               guint                    chain_length,
                               PinTlsMode               mode,
                               const char              *server_name,
                               gnutls_x509_trust_list_t trust_list,
                               GError                 **error);

PIN_TLS_AVAILABLE_IN_ALL
guint *pin_tls_find_issuer_path (GBytes *const *chain,
                                 guint          chain_length,
                                 guint         *path_length,
                                 GError       **error);

G_END_DECLS
