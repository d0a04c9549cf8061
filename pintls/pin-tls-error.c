/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "pin-tls-error.h"

/**
 * pin_tls_error_quark:
 *
 * The quark behind %PIN_TLS_ERROR.
 *
 * Returns: the error domain of pintls
 */
G_DEFINE_QUARK (pin-tls-error-quark, pin_tls_error)
