/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Certificates as pintls reads them: a certificate file (PEM or DER) as a
 * pin set, and the same bytes as one DER certificate to compute a pin
 * from and to match against. */

#include "fuzz-common.h"

static PinTlsPinSet *
any_pins (void)
{
  static PinTlsPinSet *pins;

  if (pins == NULL)
    {
      const char *strings[] = {
        "sha256/9sIXB7AFCxCp9agAXxemtPHN1m66/FkBo8xkhVRAKJY=",
        "0000000000000000000000000000000000000000000000000000000000000001",
        NULL,
      };

      pins = pin_tls_pin_set_new (strings, NULL);
    }

  return pins;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GBytes) der = g_bytes_new (data, size);
  g_autoptr(PinTlsPinSet) from_file = NULL;
  g_autoptr(PinTlsPinSet) own = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *pin = NULL;

  fuzz_init ();

  from_file = pin_tls_pin_set_new_from_file (fuzz_write_file (data, size), &error);
  g_assert ((from_file == NULL) == (error != NULL));
  g_clear_error (&error);

  pin = pin_tls_spki_pin_for_der (der, &error);
  g_assert ((pin == NULL) == (error != NULL));
  g_clear_error (&error);
  pin_tls_pin_set_matches_certificate (any_pins (), der, NULL);

  /* A certificate always matches the pin of its own key. */
  if (pin != NULL)
    {
      const char *strings[] = { pin, NULL };

      own = pin_tls_pin_set_new (strings, &error);
      g_assert (own != NULL);
      g_assert (pin_tls_pin_set_matches_certificate (own, der, &error));
    }

  return 0;
}
