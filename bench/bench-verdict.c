/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The verdict alone: how long pin_tls_verify_chain() takes to decide on a
 * chain, for pin sets of 1 to 100,000 pins, chains of 1 to 4 certificates,
 * and a pin matching the leaf, the certificate at the top of the chain, or
 * nothing. The chain is made here, once per run: a root, two intermediate
 * certificate authorities and a leaf, all ECDSA P-256. */

#include "bench.h"

#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <string.h>

#define MAX_CHAIN_LENGTH 4
#define DIGEST_SIZE 32

static const guint pin_counts[] = { 1, 10, 1000, 100000 };

typedef enum
{
  MATCH_LEAF,
  MATCH_TOP, /* the last certificate of the chain */
  MATCH_NONE,
  N_MATCHES,
} Match;

static const char *const match_names[N_MATCHES] = { "leaf", "top", "none" };

typedef struct
{
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t certificate;
  gnutls_datum_t der;
} Certificate;

static gboolean
check (int         ret,
       const char *what,
       GError    **error)
{
  if (ret >= 0)
    return TRUE;

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Cannot make the chain: %s: %s",
               what, gnutls_strerror (ret));
  return FALSE;
}

static void
set_validity (gnutls_x509_crt_t certificate)
{
  time_t now = time (NULL);
  guint8 serial[8];

  gnutls_rnd (GNUTLS_RND_NONCE, serial, sizeof serial);
  serial[0] &= 0x7f;
  gnutls_x509_crt_set_serial (certificate, serial, sizeof serial);
  gnutls_x509_crt_set_activation_time (certificate, now - 3600);
  gnutls_x509_crt_set_expiration_time (certificate, now + 3650 * 24 * 3600);
}

/* Makes a certificate signed by @issuer, or self-signed if it is NULL. */
static gboolean
make_certificate (Certificate *self,
                  const char  *name,
                  Certificate *issuer,
                  GError     **error)
{
  gboolean ca = !g_str_equal (name, "localhost");
  gnutls_x509_crt_t crt;

  gnutls_x509_privkey_init (&self->key);
  gnutls_x509_crt_init (&self->certificate);
  crt = self->certificate;
  if (!check (gnutls_x509_privkey_generate (
                self->key, GNUTLS_PK_ECDSA,
                GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0),
              "key", error))
    return FALSE;

  gnutls_x509_crt_set_version (crt, 3);
  set_validity (crt);
  gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, 0, name,
                                 strlen (name));
  gnutls_x509_crt_set_key (crt, self->key);
  gnutls_x509_crt_set_basic_constraints (crt, ca, -1);
  gnutls_x509_crt_set_key_usage (crt,
                                 ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
                                    : GNUTLS_KEY_DIGITAL_SIGNATURE);
  if (!ca)
    gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME, name,
                                          strlen (name), GNUTLS_FSAN_SET);

  return check (gnutls_x509_crt_sign2 (crt, issuer ? issuer->certificate : crt,
                                       issuer ? issuer->key : self->key,
                                       GNUTLS_DIG_SHA256, 0),
                "signature", error)
         && check (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_DER, &self->der),
                   "export", error);
}

/* chain[0] is the leaf, each next one its issuer, chain[3] the root. */
static gboolean
make_chain (Certificate *chain,
            GError     **error)
{
  return make_certificate (&chain[3], "Benchmark Root", NULL, error)
         && make_certificate (&chain[2], "Benchmark Intermediate 1", &chain[3],
                              error)
         && make_certificate (&chain[1], "Benchmark Intermediate 2", &chain[2],
                              error)
         && make_certificate (&chain[0], "localhost", &chain[1], error);
}

static void
free_chain (Certificate *chain)
{
  guint i;

  for (i = 0; i < MAX_CHAIN_LENGTH; i++)
    {
      gnutls_x509_crt_deinit (chain[i].certificate);
      gnutls_x509_privkey_deinit (chain[i].key);
      gnutls_free (chain[i].der.data);
    }
}

static char *
format_pin (const guint8 *digest)
{
  g_autofree char *encoded = g_base64_encode (digest, DIGEST_SIZE);

  return g_strconcat ("sha256/", encoded, NULL);
}

static char *
random_pin (void)
{
  guint32 digest[DIGEST_SIZE / 4];
  guint i;

  for (i = 0; i < G_N_ELEMENTS (digest); i++)
    digest[i] = g_random_int ();

  return format_pin ((const guint8 *) digest);
}

static char *
certificate_pin (Certificate *certificate)
{
  guint8 digest[DIGEST_SIZE];
  size_t size = sizeof digest;

  gnutls_x509_crt_get_key_id (certificate->certificate, GNUTLS_KEYID_USE_SHA256,
                              digest, &size);

  return format_pin (digest);
}

static PinTlsPinSet *
pin_set_of (GPtrArray *pins)
{
  g_autoptr(GError) error = NULL;
  PinTlsPinSet *set;

  g_ptr_array_add (pins, NULL);
  set = pin_tls_pin_set_new ((const char *const *) pins->pdata, &error);
  g_assert_no_error (error);

  return set;
}

/* @n_pins - 1 random pins, made once for every case. */
static PinTlsPinSet *
random_pins (guint n_pins)
{
  static PinTlsPinSet *made[G_N_ELEMENTS (pin_counts)];
  guint i;

  for (i = 0; pin_counts[i] != n_pins; i++)
    ;

  if (made[i] == NULL)
    {
      g_autoptr(GPtrArray) pins = g_ptr_array_new_with_free_func (g_free);

      while (pins->len < n_pins - 1)
        g_ptr_array_add (pins, random_pin ());
      made[i] = pin_set_of (pins);
    }

  return made[i];
}

/* @n_pins pins: @pin and random ones. */
static PinTlsPinSet *
make_pin_set (guint       n_pins,
              const char *pin)
{
  g_autoptr(GPtrArray) pins = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(PinTlsPinSet) one = NULL;

  g_ptr_array_add (pins, g_strdup (pin));
  one = pin_set_of (pins);
  if (n_pins == 1)
    return g_steal_pointer (&one);

  return pin_tls_pin_set_union (random_pins (n_pins), one);
}

/* Microseconds per decision, over at least @seconds. */
static double
time_decisions (PinTlsPinSet         *pins,
                const gnutls_datum_t *chain,
                guint                 length,
                gboolean              accept,
                double                seconds)
{
  double start = bench_now ();
  double elapsed;
  guint count = 0;

  do
    {
      g_autoptr(GError) error = NULL;

      if (pin_tls_verify_chain (pins, chain, length, PIN_TLS_MODE_PIN_ONLY,
                                "localhost", NULL, &error)
          != accept)
        g_error ("Unexpected verdict: %s", error ? error->message : "accepted");
      count++;
      elapsed = bench_now () - start;
    }
  while (elapsed < seconds || count < 3);

  return elapsed * 1e6 / count;
}

static void
measure_case (Certificate *chain,
              guint        length,
              Match        match,
              double       seconds)
{
  gnutls_datum_t der[MAX_CHAIN_LENGTH];
  g_autofree char *pin = NULL;
  guint i;

  for (i = 0; i < length; i++)
    der[i] = chain[i].der;

  if (match == MATCH_NONE)
    pin = random_pin ();
  else
    pin = certificate_pin (&chain[match == MATCH_LEAF ? 0 : length - 1]);

  /* Every pin count in turn, so that the ones compared ran side by side. */
  for (i = 0; i < G_N_ELEMENTS (pin_counts); i++)
    {
      g_autoptr(PinTlsPinSet) pins = make_pin_set (pin_counts[i], pin);
      g_autofree char *key = g_strdup_printf ("verdict.%u.%u.%s", pin_counts[i],
                                              length, match_names[match]);

      time_decisions (pins, der, length, match != MATCH_NONE, seconds / 10);
      bench_report (
        key, "%.2f",
        time_decisions (pins, der, length, match != MATCH_NONE, seconds));
    }
}

int
bench_verdict_run (double seconds_per_case)
{
  Certificate chain[MAX_CHAIN_LENGTH] = { { 0 } };
  g_autoptr(GError) error = NULL;
  guint length;

  if (!make_chain (chain, &error))
    {
      g_printerr ("%s\n", error->message);
      free_chain (chain);
      return 1;
    }

  measure_case (chain, 1, MATCH_LEAF, seconds_per_case);
  measure_case (chain, 1, MATCH_NONE, seconds_per_case);
  for (length = 2; length <= MAX_CHAIN_LENGTH; length++)
    {
      measure_case (chain, length, MATCH_LEAF, seconds_per_case);
      measure_case (chain, length, MATCH_TOP, seconds_per_case);
    }
  measure_case (chain, MAX_CHAIN_LENGTH, MATCH_NONE, seconds_per_case);

  free_chain (chain);

  return 0;
}
