/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The pin verdict over arbitrary chains: the input is a list of
 * length-prefixed DER certificates (see fuzz_split ()). The issuer path
 * must start at the leaf and hold each certificate at most once; the
 * verdict must be reached with a fixed pin set, with the pins of the
 * chain's own certificates, and in CA_AND_PINS mode against the test
 * root. */

#include "fuzz-common.h"

#define MAX_CERTIFICATES 16

static PinTlsPinSet *
fixed_pins (void)
{
  static PinTlsPinSet *pins;

  if (pins == NULL)
    {
      const char *strings[] = { "sha256/9sIXB7AFCxCp9agAXxemtPHN1m66/FkBo8xkhVRAKJY=", NULL };

      pins = pin_tls_pin_set_new (strings, NULL);
    }

  return pins;
}

/* The test hierarchy's root, when the fuzzer runs from the source tree
 * (PINTLS_DATA_DIR), or an empty trust list. */
static gnutls_x509_trust_list_t
trust_list (void)
{
  static gnutls_x509_trust_list_t list;

  if (list == NULL)
    {
      const char *data_dir = g_getenv ("PINTLS_DATA_DIR");

      gnutls_x509_trust_list_init (&list, 0);
      if (data_dir != NULL)
        {
          g_autofree char *root = g_build_filename (data_dir, "certs", "rootA.pem", NULL);

          gnutls_x509_trust_list_add_trust_file (list, root, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
        }
    }

  return list;
}

static void
check_path (gnutls_datum_t *chain,
            guint           n)
{
  GBytes *bytes[MAX_CERTIFICATES];
  g_autoptr(GError) error = NULL;
  g_autofree guint *path = NULL;
  gboolean seen[MAX_CERTIFICATES] = { FALSE };
  guint length = 0;
  guint i;

  for (i = 0; i < n; i++)
    bytes[i] = g_bytes_new_static (chain[i].data, chain[i].size);

  path = pin_tls_find_issuer_path (bytes, n, &length, &error);
  g_assert ((path == NULL) == (error != NULL));
  if (path != NULL)
    {
      g_assert (length >= 1 && length <= n && path[0] == 0);
      for (i = 0; i < length; i++)
        {
          g_assert (path[i] < n && !seen[path[i]]);
          seen[path[i]] = TRUE;
        }
    }

  for (i = 0; i < n; i++)
    g_bytes_unref (bytes[i]);
}

/* The pins of every certificate of the chain, or NULL if one has none;
 * *@all says whether each certificate gave its pin. */
static PinTlsPinSet *
own_pins (gnutls_datum_t *chain,
          guint           n,
          gboolean       *all)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) strings = NULL;
  guint i;

  for (i = 0; i < n; i++)
    {
      g_autoptr(GBytes) der = g_bytes_new_static (chain[i].data, chain[i].size);
      g_autofree char *pin = pin_tls_spki_pin_for_der (der, NULL);

      if (pin != NULL)
        g_strv_builder_add (builder, pin);
      else
        *all = FALSE;
    }

  strings = g_strv_builder_end (builder);
  return strings[0] != NULL ? pin_tls_pin_set_new ((const char *const *) strings, NULL) : NULL;
}

static gboolean
verify (PinTlsPinSet   *pins,
        gnutls_datum_t *chain,
        guint           n,
        PinTlsMode      mode)
{
  g_autoptr(GError) error = NULL;
  gboolean accepted;

  accepted = pin_tls_verify_chain (pins, chain, n, mode, "host.test",
                                   mode == PIN_TLS_MODE_CA_AND_PINS ? trust_list () : NULL, &error);
  g_assert (accepted == (error == NULL));
  g_assert (accepted || error->domain == PIN_TLS_ERROR || error->domain == G_TLS_ERROR);

  return accepted;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  gnutls_datum_t chain[MAX_CERTIFICATES];
  g_autoptr(PinTlsPinSet) own = NULL;
  gboolean all = TRUE;
  guint n;

  fuzz_init ();

  n = fuzz_split (data, size, chain, MAX_CERTIFICATES);
  check_path (chain, n);
  verify (fixed_pins (), chain, n, PIN_TLS_MODE_PIN_ONLY);

  /* The leaf's own pin always matches, once every certificate reads. */
  own = own_pins (chain, n, &all);
  if (own != NULL)
    {
      gboolean accepted = verify (own, chain, n, PIN_TLS_MODE_PIN_ONLY);

      g_assert (accepted || !all);
      verify (own, chain, n, PIN_TLS_MODE_CA_AND_PINS);
    }

  return 0;
}
