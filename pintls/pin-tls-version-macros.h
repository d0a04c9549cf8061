/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined(__PINTLS_H_INSIDE__) && !defined(PIN_TLS_COMPILATION)
#error "Only <pintls/pintls.h> can be included directly."
#endif

#include <glib.h>

#if defined(PIN_TLS_COMPILATION) && defined(__GNUC__)
#define _PIN_TLS_EXTERN __attribute__ ((visibility ("default"))) extern
#else
#define _PIN_TLS_EXTERN extern
#endif

/* Every public symbol carries this; later releases add PIN_TLS_AVAILABLE_IN_x_y. */
#define PIN_TLS_AVAILABLE_IN_ALL _PIN_TLS_EXTERN
