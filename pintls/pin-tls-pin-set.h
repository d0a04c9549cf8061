/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined(__PINTLS_H_INSIDE__) && !defined(PIN_TLS_COMPILATION)
#error "Only <pintls/pintls.h> can be included directly."
#endif

#include <gio/gio.h>

#include <pintls/pin-tls-version-macros.h>

G_BEGIN_DECLS

#define PIN_TLS_TYPE_PIN_SET (pin_tls_pin_set_get_type ())

PIN_TLS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (PinTlsPinSet, pin_tls_pin_set, PIN_TLS, PIN_SET, GObject)

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPinSet *pin_tls_pin_set_new (const char *const *pins,
                                   GError           **error);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPinSet *pin_tls_pin_set_new_from_file (const char *path,
                                             GError    **error);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPinSet *pin_tls_pin_set_new_from_certificates (GTlsCertificate *const *certificates,
                                                     guint                   n_certificates,
                                                     GError                **error);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPinSet *pin_tls_pin_set_union (PinTlsPinSet *set,
                                     PinTlsPinSet *other);

PIN_TLS_AVAILABLE_IN_ALL
guint pin_tls_pin_set_get_size (PinTlsPinSet *set);

PIN_TLS_AVAILABLE_IN_ALL
char **pin_tls_pin_set_to_strings (PinTlsPinSet *set);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_pin_set_equal (PinTlsPinSet *set,
                                PinTlsPinSet *other);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_pin_set_matches_certificate (PinTlsPinSet *set,
                                              GBytes       *certificate_der,
                                              GError      **error);

PIN_TLS_AVAILABLE_IN_ALL
char *pin_tls_spki_pin_for_der (GBytes  *certificate_der,
                                GError **error);

PIN_TLS_AVAILABLE_IN_ALL
char *pin_tls_spki_pin_for_certificate (GTlsCertificate *certificate,
                                        GError         **error);

G_END_DECLS
