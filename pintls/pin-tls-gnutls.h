/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined(__PINTLS_H_INSIDE__) && !defined(PIN_TLS_COMPILATION)
#error "Only <pintls/pintls.h> can be included directly."
#endif

#include <glib.h>
#include <gnutls/gnutls.h>

#include <pintls/pin-tls-pin-set.h>
#include <pintls/pin-tls-verify.h>
#include <pintls/pin-tls-version-macros.h>

G_BEGIN_DECLS

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_session_enforce_pins (gnutls_session_t session,
                                       PinTlsPinSet    *pins,
                                       PinTlsMode       mode,
                                       const char      *server_name,
                                       GError         **error);

PIN_TLS_AVAILABLE_IN_ALL
GError *pin_tls_session_handshake_error (gnutls_session_t session,
                                         int              handshake_result);

G_END_DECLS
