/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined(__PINTLS_H_INSIDE__) && !defined(PIN_TLS_COMPILATION)
#error "Only <pintls/pintls.h> can be included directly."
#endif

#include <gio/gio.h>

#include <pintls/pin-tls-client-connection.h>
#include <pintls/pin-tls-pin-set.h>
#include <pintls/pin-tls-policy.h>
#include <pintls/pin-tls-version-macros.h>

G_BEGIN_DECLS

PIN_TLS_AVAILABLE_IN_ALL
PinTlsClientConnection *pin_tls_connect (const char   *host_and_port,
                                         guint16       default_port,
                                         PinTlsPinSet *pins,
                                         GCancellable *cancellable,
                                         GError      **error);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_connect_async (const char         *host_and_port,
                            guint16             default_port,
                            PinTlsPinSet       *pins,
                            GCancellable       *cancellable,
                            GAsyncReadyCallback callback,
                            gpointer            user_data);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsClientConnection *pin_tls_connect_finish (GAsyncResult *result,
                                                GError      **error);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsClientConnection *pin_tls_connect_with_policy (const char   *host_and_port,
                                                     guint16       default_port,
                                                     PinTlsPolicy *policy,
                                                     GCancellable *cancellable,
                                                     GError      **error);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_connect_with_policy_async (const char         *host_and_port,
                                        guint16             default_port,
                                        PinTlsPolicy       *policy,
                                        GCancellable       *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer            user_data);

PIN_TLS_AVAILABLE_IN_ALL
GPtrArray *pin_tls_fetch_server_chain (const char   *host_and_port,
                                       guint16       default_port,
                                       const char   *server_name,
                                       GCancellable *cancellable,
                                       GError      **error);

G_END_DECLS
