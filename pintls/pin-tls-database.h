/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined(__PINTLS_H_INSIDE__) && !defined(PIN_TLS_COMPILATION)
#error "Only <pintls/pintls.h> can be included directly."
#endif

#include <gio/gio.h>

#include <pintls/pin-tls-policy.h>
#include <pintls/pin-tls-version-macros.h>

G_BEGIN_DECLS

#define PIN_TLS_TYPE_DATABASE (pin_tls_database_get_type ())

PIN_TLS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (PinTlsDatabase, pin_tls_database, PIN_TLS, DATABASE, GTlsDatabase)

PIN_TLS_AVAILABLE_IN_ALL
PinTlsDatabase *pin_tls_database_new (PinTlsPolicy *policy,
                                      GTlsDatabase *trust);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPolicy *pin_tls_database_get_policy (PinTlsDatabase *self);

PIN_TLS_AVAILABLE_IN_ALL
GTlsDatabase *pin_tls_database_get_trust (PinTlsDatabase *self);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_policy_arm_connection (PinTlsPolicy   *policy,
                                    GTlsConnection *connection);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_policy_check_connection (PinTlsPolicy   *policy,
                                          GTlsConnection *connection,
                                          GError        **error);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_policy_handle_network_event (PinTlsPolicy      *policy,
                                          GSocketClientEvent event,
                                          GIOStream         *connection);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_policy_arm_socket_client (PinTlsPolicy  *policy,
                                       GSocketClient *client);

G_END_DECLS
