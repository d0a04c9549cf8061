/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined(__PINTLS_H_INSIDE__) && !defined(PIN_TLS_COMPILATION)
#error "Only <pintls/pintls.h> can be included directly."
#endif

#include <gio/gio.h>

#include <pintls/pin-tls-pin-set.h>
#include <pintls/pin-tls-policy.h>
#include <pintls/pin-tls-verify.h>
#include <pintls/pin-tls-version-macros.h>

G_BEGIN_DECLS

#define PIN_TLS_TYPE_CLIENT_CONNECTION (pin_tls_client_connection_get_type ())

PIN_TLS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (PinTlsClientConnection, pin_tls_client_connection,
                      PIN_TLS, CLIENT_CONNECTION, GTlsConnection)

PIN_TLS_AVAILABLE_IN_ALL
PinTlsClientConnection *pin_tls_client_connection_new (GIOStream          *base_io_stream,
                                                       GSocketConnectable *server_identity,
                                                       PinTlsPinSet       *pins,
                                                       GError            **error);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsClientConnection *pin_tls_client_connection_new_with_policy (GIOStream          *base_io_stream,
                                                                   GSocketConnectable *server_identity,
                                                                   PinTlsPolicy       *policy,
                                                                   GError            **error);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPinSet *pin_tls_client_connection_get_pins (PinTlsClientConnection *self);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPolicy *pin_tls_client_connection_get_policy (PinTlsClientConnection *self);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsMode pin_tls_client_connection_get_mode (PinTlsClientConnection *self);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_client_connection_set_mode (PinTlsClientConnection *self,
                                         PinTlsMode              mode);

PIN_TLS_AVAILABLE_IN_ALL
char **pin_tls_client_connection_get_presented_pins (PinTlsClientConnection *self);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_client_connection_get_session_resumption_enabled (PinTlsClientConnection *self);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_client_connection_set_session_resumption_enabled (PinTlsClientConnection *self,
                                                               gboolean                enabled);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_client_connection_get_session_resumed (PinTlsClientConnection *self);

G_END_DECLS
