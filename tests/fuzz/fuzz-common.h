/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What the libFuzzer targets share. Each target is a program of its own
 * that libFuzzer calls with one input at a time. */

#pragma once

#include <stddef.h>
#include <stdint.h>

#include "pin-tls-private.h"

G_BEGIN_DECLS

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

/* Makes GLib quiet and non-fatal for the run: the library may log at
 * debug level, and an input must never make it warn. */
void fuzz_init (void);

/* Writes @data to a file of the fuzzer's own and returns its path, for
 * the entry points that read files. */
const char *fuzz_write_file (const uint8_t *data,
                             size_t         size);

/* Splits @data into the pieces a length-prefixed chain holds: each piece
 * is a big-endian 16-bit length followed by that many bytes; a short
 * last piece takes what is left. At most @max_pieces. */
guint fuzz_split (const uint8_t  *data,
                  size_t          size,
                  gnutls_datum_t *pieces,
                  guint           max_pieces);

G_END_DECLS
