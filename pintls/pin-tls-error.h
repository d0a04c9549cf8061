/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined(__PINTLS_H_INSIDE__) && !defined(PIN_TLS_COMPILATION)
#error "Only <pintls/pintls.h> can be included directly."
#endif

#include <glib.h>

#include <pintls/pin-tls-version-macros.h>

G_BEGIN_DECLS

/**
 * PIN_TLS_ERROR:
 *
 * The error domain of pintls: pin mismatches and pin configuration errors.
 *
 * Failures that have nothing to do with pins keep the codes GIO uses for
 * them, in the `G_TLS_ERROR` and `G_IO_ERROR` domains.
 */
#define PIN_TLS_ERROR (pin_tls_error_quark ())

/**
 * PinTlsError:
 * @PIN_TLS_ERROR_PIN_MISMATCH: the server did not present any pinned
 *   certificate or key. The server has moved to a certificate this client
 *   does not know: the client is outdated and must be updated.
 * @PIN_TLS_ERROR_INVALID_PIN: a pin could not be parsed. The message names
 *   the offending text.
 * @PIN_TLS_ERROR_EMPTY_PIN_SET: a pin set would have had no pins. pintls has
 *   no "pins off" state, so this is refused.
 * @PIN_TLS_ERROR_INVALID_FILE: a pin or certificate file could not be read
 *   or does not hold what it should. The message names the file and, where
 *   there is one, the line.
 * @PIN_TLS_ERROR_INVALID_CERTIFICATE: data given as a certificate is not a
 *   valid X.509 certificate.
 * @PIN_TLS_ERROR_PINS_EXPIRED: the server presented no pinned certificate
 *   and the policy entry's pins have expired: the client's pins are out of
 *   date, and it must be updated.
 * @PIN_TLS_ERROR_HOST_NOT_PINNED: a [class@PinTls.Policy] that refuses
 *   unpinned hosts has no entry for the server.
 * @PIN_TLS_ERROR_INVALID_POLICY: a policy or policy file is invalid. The
 *   message names the file, group and key.
 *
 * Error codes in the %PIN_TLS_ERROR domain. New codes may be added in later
 * versions.
 */
typedef enum
{
  PIN_TLS_ERROR_PIN_MISMATCH,
  PIN_TLS_ERROR_INVALID_PIN,
  PIN_TLS_ERROR_EMPTY_PIN_SET,
  PIN_TLS_ERROR_INVALID_FILE,
  PIN_TLS_ERROR_INVALID_CERTIFICATE,
  PIN_TLS_ERROR_PINS_EXPIRED,
  PIN_TLS_ERROR_HOST_NOT_PINNED,
  PIN_TLS_ERROR_INVALID_POLICY,
} PinTlsError;

PIN_TLS_AVAILABLE_IN_ALL
GQuark pin_tls_error_quark (void);

G_END_DECLS
