/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pin_tls_pin_set_new_from_file() on arbitrary file contents: pin lines,
 * PEM or DER certificates, or anything else. */

#include "fuzz-common.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  const char *path;
  g_autoptr(PinTlsPinSet) set = NULL;
  g_autoptr(GError) error = NULL;

  fuzz_init ();

  path = fuzz_write_file (data, size);
  set = pin_tls_pin_set_new_from_file (path, &error);

  if (set == NULL)
    g_assert (error != NULL && error->domain == PIN_TLS_ERROR);
  else
    g_assert (error == NULL && pin_tls_pin_set_get_size (set) > 0);

  return 0;
}
