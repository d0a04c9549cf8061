/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pin_tls_pin_set_new() on arbitrary strings: the input is split at
 * newlines into the list. A set that parses must print pins that parse
 * back to the same set. */

#include "fuzz-common.h"

#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_auto(GStrv) pins = g_strsplit (text, "\n", 64);
  g_autoptr(PinTlsPinSet) set = NULL;
  g_autoptr(PinTlsPinSet) again = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) printed = NULL;

  fuzz_init ();

  set = pin_tls_pin_set_new ((const char *const *) pins, &error);
  if (set == NULL)
    {
      g_assert (error != NULL && error->domain == PIN_TLS_ERROR);
      return 0;
    }

  g_assert (error == NULL);
  printed = pin_tls_pin_set_to_strings (set);
  g_assert (g_strv_length (printed) == pin_tls_pin_set_get_size (set));

  again = pin_tls_pin_set_new ((const char *const *) printed, &error);
  g_assert (again != NULL && pin_tls_pin_set_equal (set, again));

  return 0;
}
