/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The pin verdict on a presented chain: which certificates may match a pin,
 * how the trust modes differ, what a mismatch says, and the issuer path
 * pintls builds by signature. Public-key pins come from
 * pin_tls_spki_pin_for_der(), which test-pins checks against certtool and
 * OpenSSL. */

#include "test-utils.h"

#include <string.h>

#define HOSTILE_COPIES 200

/* The certificates of @files, in order, as a server would send them. */
static GPtrArray *
load_chain (const char *const *files)
{
  GPtrArray *chain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  guint i;

  for (i = 0; files[i] != NULL; i++)
    {
      g_autoptr(GPtrArray) certs = test_load_der_chain (files[i]);
      guint j;

      for (j = 0; j < certs->len; j++)
        g_ptr_array_add (chain, g_bytes_ref (g_ptr_array_index (certs, j)));
    }

  return chain;
}

static GBytes *
load_first_der (const char *name)
{
  g_autoptr(GPtrArray) chain = test_load_der_chain (name);

  return g_bytes_ref (g_ptr_array_index (chain, 0));
}

static char *
spki_pin_of (const char *name)
{
  g_autoptr(GBytes) der = load_first_der (name);
  g_autoptr(GError) error = NULL;
  char *pin;

  pin = pin_tls_spki_pin_for_der (der, &error);
  g_assert_no_error (error);

  return pin;
}

/* Pins of the first certificate of each of @files: its public key, or the
 * whole certificate by its fingerprint. */
static PinTlsPinSet *
pins_for (const char *const *files,
          gboolean           certificate_pins)
{
  g_autoptr(GPtrArray) pins = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  PinTlsPinSet *set;
  guint i;

  for (i = 0; files[i] != NULL; i++)
    {
      g_autoptr(GBytes) der = load_first_der (files[i]);

      if (certificate_pins)
        g_ptr_array_add (pins, g_compute_checksum_for_bytes (G_CHECKSUM_SHA256,
                                                             der));
      else
        g_ptr_array_add (pins, spki_pin_of (files[i]));
    }
  g_ptr_array_add (pins, NULL);

  set = pin_tls_pin_set_new ((const char *const *) pins->pdata, &error);
  g_assert_no_error (error);

  return set;
}

static gnutls_x509_trust_list_t
trust_list_new (const char *const *ca_files)
{
  gnutls_x509_trust_list_t list;
  guint i;

  g_assert_cmpint (gnutls_x509_trust_list_init (&list, 0), ==, 0);
  for (i = 0; ca_files[i] != NULL; i++)
    {
      g_autofree char *path = test_data_path (ca_files[i]);

      g_assert_cmpint (gnutls_x509_trust_list_add_trust_file (list, path, NULL,
                                                              GNUTLS_X509_FMT_PEM,
                                                              0, 0), ==, 1);
    }

  return list;
}

static void
trust_list_free (gnutls_x509_trust_list_t list)
{
  gnutls_x509_trust_list_deinit (list, 1);
}

static gnutls_datum_t *
chain_datums (GPtrArray *chain)
{
  gnutls_datum_t *datums = g_new0 (gnutls_datum_t, chain->len + 1);
  guint i;

  for (i = 0; i < chain->len; i++)
    {
      gsize size;

      datums[i].data = (guchar *) g_bytes_get_data (g_ptr_array_index (chain, i),
                                                    &size);
      datums[i].size = size;
    }

  return datums;
}

static gboolean
verify (PinTlsPinSet            *pins,
        GPtrArray               *chain,
        PinTlsMode               mode,
        const char              *server_name,
        gnutls_x509_trust_list_t trust_list,
        GError                 **error)
{
  g_autofree gnutls_datum_t *datums = chain_datums (chain);

  return pin_tls_verify_chain (pins, datums, chain->len, mode, server_name,
                               trust_list, error);
}

typedef enum
{
  ACCEPT,
  MISMATCH,  /* PIN_TLS_ERROR_PIN_MISMATCH: "update required" */
  UNTRUSTED, /* G_TLS_ERROR_BAD_CERTIFICATE */
  BAD_NAME,  /* G_IO_ERROR_INVALID_ARGUMENT */
} Outcome;

static void
assert_outcome (gboolean accepted,
                GError  *error,
                Outcome  outcome)
{
  switch (outcome)
    {
    case ACCEPT:
      g_assert_no_error (error);
      g_assert_true (accepted);
      break;

    case MISMATCH:
      g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
      g_assert_false (accepted);
      break;

    case UNTRUSTED:
      g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
      g_assert_false (accepted);
      break;

    case BAD_NAME:
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      g_assert_false (accepted);
      break;

    default:
      g_assert_not_reached ();
    }
}

static void
assert_mentions (const char *message,
                 const char *text)
{
  if (strstr (message, text) == NULL)
    g_error ("“%s” does not mention “%s”", message, text);
}

/* CA_AND_PINS mode with no trust to ask, as the GnuTLS glue would have on
 * a session without certificate credentials: the chain is refused as
 * untrusted, whatever the pins say, and nothing crashes. */
static void
test_decision_without_trust (void)
{
  const char *files[] = { "leaf1-chain.pem", NULL };
  const char *pinned[] = { "leaf1.pem", NULL };
  g_autoptr(GPtrArray) chain = load_chain (files);
  g_autoptr(PinTlsPinSet) pins = pins_for (pinned, FALSE);
  g_autofree gnutls_datum_t *datums = chain_datums (chain);
  PinTlsDecision decision;

  _pin_tls_decision_compute (&decision, pins, datums, chain->len,
                             PIN_TLS_MODE_CA_AND_PINS, "host.test", NULL);

  g_assert_false (decision.accepted);
  g_assert_cmphex (decision.ca_errors, !=, 0);
  g_assert_error (decision.error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);

  _pin_tls_decision_clear (&decision);
}

typedef struct
{
  const char *path;
  const char *chain[5];     /* PEM files in data/certs, sent in this order */
  const char *pins[3];      /* PEM files whose first certificate is pinned */
  gboolean certificate_pins;
  PinTlsMode mode;
  const char *trust[3];     /* CA files; none in CA_AND_PINS: system store */
  const char *server_name;
  Outcome outcome;
  const char *mention;      /* what the error message must say, or NULL */
} VerifyCase;

#define PIN_ONLY PIN_TLS_MODE_PIN_ONLY
#define CA_AND_PINS PIN_TLS_MODE_CA_AND_PINS

static const VerifyCase verify_cases[] = {
  /* PIN_ONLY: a pin on the signed issuer path is the whole decision. */
  { "/pintls/verify/pin-only/leaf-pin",
    { "leaf1-chain.pem" }, { "leaf1.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/intermediate-pin",
    { "leaf1-chain.pem" }, { "intA.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/intermediate-not-sent",
    { "leaf1.pem" }, { "intA.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", MISMATCH, "update required" },
  { "/pintls/verify/pin-only/reordered-chain",
    { "leaf1.pem", "rootA.pem", "intA.pem" }, { "intA.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/reordered-chain-root-pin",
    { "leaf1.pem", "rootA.pem", "intA.pem" }, { "rootA.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/anchor-not-sent",
    { "leaf1-chain.pem" }, { "rootA.pem" }, FALSE,
    PIN_ONLY, { "rootA.pem" }, "host.test", MISMATCH, NULL },
  { "/pintls/verify/pin-only/rotated-leaf",
    { "leaf2-chain.pem" }, { "leaf1.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", MISMATCH, NULL },
  { "/pintls/verify/pin-only/backup-pin",
    { "leaf2-chain.pem" }, { "leaf1.pem", "leaf2.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/appended-decoy",
    { "leaf2.pem", "intA.pem", "intB.pem" }, { "intB.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", MISMATCH, NULL },
  { "/pintls/verify/pin-only/decoy-hierarchy",
    { "leafB-chain.pem" }, { "intB.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/self-signed",
    { "self.pem" }, { "self.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/self-signed-other-pin",
    { "self.pem" }, { "leaf1.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", MISMATCH, NULL },
  { "/pintls/verify/pin-only/expired",
    { "expired.pem" }, { "expired.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/forged-signer",
    { "forged-chain.pem" }, { "intA.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", MISMATCH, NULL },
  { "/pintls/verify/pin-only/forged-signer-pin",
    { "forged-chain.pem" }, { "other.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", MISMATCH, NULL },
  { "/pintls/verify/pin-only/v1-signer",
    { "leafV1-chain.pem" }, { "intV1.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", MISMATCH, NULL },
  { "/pintls/verify/pin-only/v1-signed-leaf-pin",
    { "leafV1-chain.pem" }, { "leafV1.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/name-not-checked",
    { "other-chain.pem" }, { "other.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/issuer-pin-other-name",
    { "other-chain.pem" }, { "intA.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", UNTRUSTED, "host.test" },
  { "/pintls/verify/pin-only/issuer-pin-other-name-root",
    { "other.pem", "intA.pem", "rootA.pem" }, { "rootA.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", UNTRUSTED, "host.test" },
  { "/pintls/verify/pin-only/issuer-pin-no-server-name",
    { "leaf1-chain.pem" }, { "intA.pem" }, FALSE,
    PIN_ONLY, { NULL }, NULL, UNTRUSTED, "no server name" },
  { "/pintls/verify/pin-only/issuer-pin-ip-address",
    { "leaf1-chain.pem" }, { "intA.pem" }, FALSE,
    PIN_ONLY, { NULL }, "127.0.0.1", ACCEPT, NULL },
  { "/pintls/verify/pin-only/issuer-pin-other-ip-address",
    { "leaf1-chain.pem" }, { "intA.pem" }, FALSE,
    PIN_ONLY, { NULL }, "127.0.0.2", UNTRUSTED, NULL },
  { "/pintls/verify/pin-only/no-server-name",
    { "leaf1-chain.pem" }, { "leaf1.pem" }, FALSE,
    PIN_ONLY, { NULL }, NULL, ACCEPT, NULL },
  { "/pintls/verify/pin-only/invalid-server-name",
    { "leaf1-chain.pem" }, { "leaf1.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test..", BAD_NAME, NULL },
  { "/pintls/verify/pin-only/certificate-pin",
    { "leaf1-chain.pem" }, { "leaf1.pem" }, TRUE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/certificate-pin-reissued",
    { "leaf1-reissued.pem", "intA.pem" }, { "leaf1.pem" }, TRUE,
    PIN_ONLY, { NULL }, "host.test", MISMATCH, NULL },
  { "/pintls/verify/pin-only/spki-pin-reissued",
    { "leaf1-reissued.pem", "intA.pem" }, { "leaf1.pem" }, FALSE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/pin-only/intermediate-certificate-pin",
    { "leaf1-chain.pem" }, { "intA.pem" }, TRUE,
    PIN_ONLY, { NULL }, "host.test", ACCEPT, NULL },

  /* CA_AND_PINS: the chain must validate for the name, then match a pin. */
  { "/pintls/verify/ca-and-pins/leaf-pin",
    { "leaf1-chain.pem" }, { "leaf1.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/ca-and-pins/intermediate-pin",
    { "leaf1-chain.pem" }, { "intA.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/ca-and-pins/anchor-pin",
    { "leaf1-chain.pem" }, { "rootA.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/ca-and-pins/anchor-certificate-pin",
    { "leaf1-chain.pem" }, { "rootA.pem" }, TRUE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/ca-and-pins/reordered-chain",
    { "leaf1.pem", "rootA.pem", "intA.pem" }, { "intA.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/ca-and-pins/rotated-leaf",
    { "leaf2-chain.pem" }, { "leaf1.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", MISMATCH, "update required" },
  { "/pintls/verify/ca-and-pins/appended-decoy",
    { "leaf2.pem", "intA.pem", "intB.pem" }, { "intB.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", MISMATCH, NULL },
  { "/pintls/verify/ca-and-pins/appended-decoy-both-roots",
    { "leaf2.pem", "intA.pem", "intB.pem" }, { "intB.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem", "rootB.pem" }, "host.test", MISMATCH, NULL },
  { "/pintls/verify/ca-and-pins/decoy-hierarchy",
    { "leafB-chain.pem" }, { "intB.pem" }, FALSE,
    CA_AND_PINS, { "rootB.pem" }, "host.test", ACCEPT, NULL },
  { "/pintls/verify/ca-and-pins/untrusted-hierarchy",
    { "leafB-chain.pem" }, { "intB.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", UNTRUSTED, NULL },
  { "/pintls/verify/ca-and-pins/self-signed",
    { "self.pem" }, { "self.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", UNTRUSTED, NULL },
  { "/pintls/verify/ca-and-pins/wrong-name",
    { "other-chain.pem" }, { "other.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", UNTRUSTED, "host.test" },
  { "/pintls/verify/ca-and-pins/forged-signer",
    { "forged-chain.pem" }, { "intA.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", UNTRUSTED, NULL },
  { "/pintls/verify/ca-and-pins/v1-signer",
    { "leafV1-chain.pem" }, { "intV1.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", UNTRUSTED, NULL },
  { "/pintls/verify/ca-and-pins/expired",
    { "expired.pem", "intA.pem" }, { "expired.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", UNTRUSTED, "expired" },
  { "/pintls/verify/ca-and-pins/intermediate-not-sent",
    { "leaf1.pem" }, { "leaf1.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "host.test", UNTRUSTED, NULL },
  { "/pintls/verify/ca-and-pins/ip-address",
    { "leaf1-chain.pem" }, { "leaf1.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "127.0.0.1", ACCEPT, NULL },
  { "/pintls/verify/ca-and-pins/other-ip-address",
    { "leaf1-chain.pem" }, { "leaf1.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "127.0.0.2", UNTRUSTED, NULL },
  { "/pintls/verify/ca-and-pins/name-normalized",
    { "leaf1-chain.pem" }, { "leaf1.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, "Host.TEST.", ACCEPT, NULL },
  { "/pintls/verify/ca-and-pins/no-server-name",
    { "leaf1-chain.pem" }, { "leaf1.pem" }, FALSE,
    CA_AND_PINS, { "rootA.pem" }, NULL, UNTRUSTED, NULL },
  { "/pintls/verify/ca-and-pins/system-store",
    { "leaf1-chain.pem" }, { "leaf1.pem" }, FALSE,
    CA_AND_PINS, { NULL }, "host.test", UNTRUSTED, NULL },
};

static void
test_verify_case (gconstpointer data)
{
  const VerifyCase *test = data;
  g_autoptr(GPtrArray) chain = load_chain (test->chain);
  g_autoptr(PinTlsPinSet) pins = pins_for (test->pins, test->certificate_pins);
  gnutls_x509_trust_list_t trust_list = NULL;
  g_autoptr(GError) error = NULL;
  gboolean accepted;

  if (test->trust[0] != NULL)
    trust_list = trust_list_new (test->trust);

  accepted = verify (pins, chain, test->mode, test->server_name, trust_list,
                     &error);
  g_clear_pointer (&trust_list, trust_list_free);

  assert_outcome (accepted, error, test->outcome);
  if (test->mention != NULL)
    assert_mentions (error->message, test->mention);
}

static void
test_verify_empty_chain (gconstpointer data)
{
  PinTlsMode mode = GPOINTER_TO_INT (data);
  const char *files[] = { "rootA.pem", NULL };
  g_autoptr(PinTlsPinSet) pins = pins_for (files, FALSE);
  gnutls_x509_trust_list_t trust_list = trust_list_new (files);
  g_autoptr(GError) error = NULL;
  gboolean accepted;

  accepted = pin_tls_verify_chain (pins, NULL, 0, mode, "host.test",
                                   trust_list, &error);
  trust_list_free (trust_list);

  assert_outcome (accepted, error, UNTRUSTED);
}

/* A pin set made with g_object_new() rather than a constructor holds no
 * pins. It is refused as the configuration error it is, never reported as
 * "update required" and never accepted. */
static void
test_verify_empty_pin_set (gconstpointer data)
{
  PinTlsMode mode = GPOINTER_TO_INT (data);
  const char *files[] = { "leaf1-chain.pem", NULL };
  const char *roots[] = { "rootA.pem", NULL };
  g_autoptr(PinTlsPinSet) pins = g_object_new (PIN_TLS_TYPE_PIN_SET, NULL);
  g_autoptr(GPtrArray) chain = load_chain (files);
  gnutls_x509_trust_list_t trust_list = trust_list_new (roots);
  g_autoptr(GError) error = NULL;
  gboolean accepted;

  accepted = verify (pins, chain, mode, "host.test", trust_list, &error);
  trust_list_free (trust_list);

  g_assert_false (accepted);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_EMPTY_PIN_SET);
}

static void
test_verify_garbage (gconstpointer data)
{
  PinTlsMode mode = GPOINTER_TO_INT (data);
  const char *files[] = { "leaf1.pem", NULL };
  const char *roots[] = { "rootA.pem", NULL };
  g_autoptr(PinTlsPinSet) pins = pins_for (files, FALSE);
  g_autoptr(GPtrArray) chain = load_chain (files);
  gnutls_x509_trust_list_t trust_list = trust_list_new (roots);
  g_autoptr(GError) leaf_error = NULL;
  g_autoptr(GError) error = NULL;
  gboolean accepted;

  g_ptr_array_insert (chain, 0, g_bytes_new_static ("\x30\x03garbage", 9));
  accepted = verify (pins, chain, mode, "host.test", trust_list, &leaf_error);
  assert_outcome (accepted, leaf_error, UNTRUSTED);

  g_ptr_array_remove_index (chain, 0);
  g_ptr_array_add (chain, g_bytes_new_static ("not a certificate", 17));
  accepted = verify (pins, chain, mode, "host.test", trust_list, &error);
  assert_outcome (accepted, error, UNTRUSTED);

  trust_list_free (trust_list);
}

/* The text of the entry for @pin in a mismatch message, up to the end of
 * its parenthesised subject. */
static char *
presented_entry (const char *message,
                 const char *pin)
{
  const char *start = strstr (message, pin);
  const char *end;

  g_assert_nonnull (start);
  end = strchr (start, ')');
  g_assert_nonnull (end);

  return g_strndup (start, end - start + 1);
}

/* A certificate the server merely appended is named as such. */
static void
test_mismatch_message_decoy (void)
{
  const char *files[] = { "leaf2.pem", "intA.pem", "intB.pem", NULL };
  const char *pinned[] = { "intB.pem", NULL };
  g_autoptr(GPtrArray) chain = load_chain (files);
  g_autoptr(PinTlsPinSet) pins = pins_for (pinned, FALSE);
  g_autofree char *leaf_pin = spki_pin_of ("leaf2.pem");
  g_autofree char *intermediate_pin = spki_pin_of ("intA.pem");
  g_autofree char *decoy_pin = spki_pin_of ("intB.pem");
  g_autofree char *leaf_entry = NULL;
  g_autofree char *intermediate_entry = NULL;
  g_autofree char *decoy_entry = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_false (verify (pins, chain, PIN_ONLY, "host.test", NULL, &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);

  leaf_entry = presented_entry (error->message, leaf_pin);
  intermediate_entry = presented_entry (error->message, intermediate_pin);
  decoy_entry = presented_entry (error->message, decoy_pin);

  assert_mentions (decoy_entry, "Intermediate B");
  assert_mentions (decoy_entry, "not on the issuer path");
  g_assert_null (strstr (leaf_entry, "not on the issuer path"));
  g_assert_null (strstr (intermediate_entry, "not on the issuer path"));
}

/* A mismatch names the server, what it presented in order with subjects,
 * what was configured, and that the client needs an update. */
static void
test_mismatch_message (void)
{
  const char *files[] = { "leaf2-chain.pem", NULL };
  const char *pinned[] = { "leaf1.pem", "rootB.pem", NULL };
  const char *roots[] = { "rootA.pem", NULL };
  g_autoptr(GPtrArray) chain = load_chain (files);
  g_autoptr(PinTlsPinSet) pins = pins_for (pinned, FALSE);
  gnutls_x509_trust_list_t trust_list = trust_list_new (roots);
  g_autofree char *leaf_pin = spki_pin_of ("leaf2.pem");
  g_autofree char *intermediate_pin = spki_pin_of ("intA.pem");
  g_autofree char *leaf_entry = NULL;
  g_autofree char *intermediate_entry = NULL;
  g_autofree char *configured_leaf = spki_pin_of ("leaf1.pem");
  g_autofree char *configured_root = spki_pin_of ("rootB.pem");
  g_autoptr(GError) error = NULL;
  const char *message;

  g_assert_false (verify (pins, chain, CA_AND_PINS, "host.test", trust_list,
                          &error));
  trust_list_free (trust_list);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  message = error->message;

  assert_mentions (message, "host.test");
  assert_mentions (message, "update required");
  assert_mentions (message, configured_leaf);
  assert_mentions (message, configured_root);

  leaf_entry = presented_entry (message, leaf_pin);
  intermediate_entry = presented_entry (message, intermediate_pin);
  assert_mentions (leaf_entry, "host.test");
  assert_mentions (intermediate_entry, "Intermediate A");
  g_assert_true (strstr (message, leaf_pin) < strstr (message, intermediate_pin));
}

/* With certificate pins configured, the message gives each presented
 * certificate's fingerprint too, so that it can be compared with them;
 * with only public-key pins it does not clutter the message with them. */
static void
test_mismatch_message_certificate_pins (void)
{
  const char *files[] = { "leaf2-chain.pem", NULL };
  const char *pinned[] = { "leaf1.pem", NULL };
  g_autoptr(GPtrArray) chain = load_chain (files);
  g_autoptr(PinTlsPinSet) certificate_pins = pins_for (pinned, TRUE);
  g_autoptr(PinTlsPinSet) key_pins = pins_for (pinned, FALSE);
  g_autoptr(GBytes) leaf = load_first_der ("leaf2.pem");
  g_autofree char *leaf_fingerprint = NULL;
  g_autofree char *leaf_entry = NULL;
  g_autofree char *leaf_pin = spki_pin_of ("leaf2.pem");
  g_autoptr(GError) error = NULL;

  leaf_fingerprint = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, leaf);

  g_assert_false (verify (certificate_pins, chain, PIN_ONLY, "host.test", NULL,
                          &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  leaf_entry = presented_entry (error->message, leaf_pin);
  assert_mentions (leaf_entry, leaf_fingerprint);
  g_clear_error (&error);

  g_assert_false (verify (key_pins, chain, PIN_ONLY, "host.test", NULL,
                          &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_null (strstr (error->message, leaf_fingerprint));
}

static char *
random_pin (void)
{
  guint8 digest[PIN_TLS_DIGEST_SIZE];
  g_autofree char *base64 = NULL;
  guint i;

  for (i = 0; i < PIN_TLS_DIGEST_SIZE; i++)
    digest[i] = g_test_rand_int_range (0, 256);
  base64 = g_base64_encode (digest, PIN_TLS_DIGEST_SIZE);

  return g_strconcat ("sha256/", base64, NULL);
}

/* Twenty configured pins do not make a message of twenty pins. */
static void
test_mismatch_message_bounded (void)
{
  const char *files[] = { "leaf2-chain.pem", NULL };
  g_autoptr(GPtrArray) chain = load_chain (files);
  g_autoptr(GPtrArray) configured = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(PinTlsPinSet) pins = NULL;
  g_autoptr(GError) error = NULL;
  guint i;

  for (i = 0; i < 20; i++)
    g_ptr_array_add (configured, random_pin ());
  g_ptr_array_add (configured, NULL);
  pins = pin_tls_pin_set_new ((const char *const *) configured->pdata, &error);
  g_assert_no_error (error);

  g_assert_false (verify (pins, chain, PIN_ONLY, "host.test", NULL, &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);

  assert_mentions (error->message, g_ptr_array_index (configured, 0));
  assert_mentions (error->message, "more");
  g_assert_null (strstr (error->message, g_ptr_array_index (configured, 19)));
  g_assert_cmpuint (strlen (error->message), <, 2048);
}

typedef struct
{
  const char *path;
  int result;
  unsigned status;
  gboolean trusted;
  GTlsCertificateFlags expected; /* flags that must be among those set */
} CaFlagsCase;

static const CaFlagsCase ca_flags_cases[] = {
  { "/pintls/verify/ca-flags/trusted", 0, 0, TRUE, 0 },
  { "/pintls/verify/ca-flags/call-failed", -1, 0, FALSE, 0 },
  { "/pintls/verify/ca-flags/verification-error",
    GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR, 0, FALSE, 0 },
  { "/pintls/verify/ca-flags/call-failed-with-status",
    GNUTLS_E_CERTIFICATE_ERROR, GNUTLS_CERT_INVALID, FALSE, 0 },
  { "/pintls/verify/ca-flags/invalid", 0, GNUTLS_CERT_INVALID, FALSE, 0 },
  { "/pintls/verify/ca-flags/signer-not-found", 0,
    GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_FOUND, FALSE,
    G_TLS_CERTIFICATE_UNKNOWN_CA },
  { "/pintls/verify/ca-flags/signer-not-ca", 0,
    GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_CA, FALSE,
    G_TLS_CERTIFICATE_UNKNOWN_CA },
  { "/pintls/verify/ca-flags/expired", 0,
    GNUTLS_CERT_INVALID | GNUTLS_CERT_EXPIRED, FALSE,
    G_TLS_CERTIFICATE_EXPIRED },
  { "/pintls/verify/ca-flags/not-activated", 0,
    GNUTLS_CERT_INVALID | GNUTLS_CERT_NOT_ACTIVATED, FALSE,
    G_TLS_CERTIFICATE_NOT_ACTIVATED },
  { "/pintls/verify/ca-flags/unexpected-owner", 0,
    GNUTLS_CERT_INVALID | GNUTLS_CERT_UNEXPECTED_OWNER, FALSE,
    G_TLS_CERTIFICATE_BAD_IDENTITY },
  { "/pintls/verify/ca-flags/revoked", 0,
    GNUTLS_CERT_INVALID | GNUTLS_CERT_REVOKED, FALSE,
    G_TLS_CERTIFICATE_REVOKED },
  { "/pintls/verify/ca-flags/signature-failure", 0,
    GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNATURE_FAILURE, FALSE, 0 },
  { "/pintls/verify/ca-flags/expired-and-unexpected-owner", 0,
    GNUTLS_CERT_INVALID | GNUTLS_CERT_EXPIRED | GNUTLS_CERT_UNEXPECTED_OWNER,
    FALSE, G_TLS_CERTIFICATE_EXPIRED | G_TLS_CERTIFICATE_BAD_IDENTITY },
};

/* A verification result is never read as "trusted" unless the call
 * succeeded and set no status bit. */
static void
test_ca_flags (gconstpointer data)
{
  const CaFlagsCase *test = data;
  GTlsCertificateFlags flags;

  flags = _pin_tls_ca_flags_from_gnutls (test->result, test->status);

  if (test->trusted)
    {
      g_assert_cmphex (flags, ==, 0);
      return;
    }

  g_assert_cmphex (flags, !=, 0);
  g_assert_cmphex (flags & test->expected, ==, test->expected);
}

static GTlsCertificateFlags
failing_trust_verify (PinTlsTrust *trust,
                      PinTlsChain *chain,
                      const char  *server_name)
{
  return _pin_tls_ca_flags_from_gnutls (GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR,
                                        0);
}

static gnutls_x509_crt_t
failing_trust_lookup_issuer (PinTlsTrust      *trust,
                             gnutls_x509_crt_t certificate)
{
  return NULL;
}

/* A trust whose verification call fails with no status bit set refuses a
 * chain even though a pin matches. */
static void
test_decision_failed_verification (void)
{
  const char *files[] = { "leaf1-chain.pem", NULL };
  const char *pinned[] = { "leaf1.pem", NULL };
  g_autoptr(GPtrArray) chain = load_chain (files);
  g_autoptr(PinTlsPinSet) pins = pins_for (pinned, FALSE);
  g_autofree gnutls_datum_t *datums = chain_datums (chain);
  PinTlsTrust trust = { failing_trust_verify, failing_trust_lookup_issuer,
                        NULL };
  PinTlsDecision decision;

  _pin_tls_decision_compute (&decision, pins, datums, chain->len,
                             PIN_TLS_MODE_CA_AND_PINS, "host.test", &trust);

  g_assert_true (decision.pin_matched);
  g_assert_false (decision.accepted);
  g_assert_cmphex (decision.ca_errors, !=, 0);
  g_assert_error (decision.error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);

  _pin_tls_decision_clear (&decision);
}

typedef struct
{
  const char *path;
  const char *chain[5];
  guint expected[4];
  guint expected_length;
} IssuerPathCase;

static const IssuerPathCase issuer_path_cases[] = {
  { "/pintls/verify/issuer-path/chain",
    { "leaf1-chain.pem" }, { 0, 1 }, 2 },
  { "/pintls/verify/issuer-path/full-chain",
    { "leaf1-chain.pem", "rootA.pem" }, { 0, 1, 2 }, 3 },
  { "/pintls/verify/issuer-path/leaf-only",
    { "leaf1.pem" }, { 0 }, 1 },
  { "/pintls/verify/issuer-path/appended-decoy",
    { "leaf2.pem", "intA.pem", "intB.pem" }, { 0, 1 }, 2 },
  { "/pintls/verify/issuer-path/reordered",
    { "leaf1.pem", "rootA.pem", "intA.pem" }, { 0, 2, 1 }, 3 },
  { "/pintls/verify/issuer-path/unrelated-first",
    { "leaf1.pem", "intB.pem", "leafB.pem", "intA.pem" }, { 0, 3 }, 2 },
  { "/pintls/verify/issuer-path/forged-signer",
    { "forged-chain.pem" }, { 0 }, 1 },
  { "/pintls/verify/issuer-path/v1-signer",
    { "leafV1-chain.pem" }, { 0 }, 1 },
  { "/pintls/verify/issuer-path/self-signed",
    { "self.pem", "intA.pem" }, { 0 }, 1 },
};

static void
test_issuer_path (gconstpointer data)
{
  const IssuerPathCase *test = data;
  g_autoptr(GPtrArray) chain = load_chain (test->chain);
  g_autoptr(GError) error = NULL;
  g_autofree guint *path = NULL;
  guint path_length = 0;

  path = pin_tls_find_issuer_path ((GBytes *const *) chain->pdata, chain->len,
                                   &path_length, &error);
  g_assert_no_error (error);

  g_assert_cmpmem (path, path_length * sizeof (guint), test->expected,
                   test->expected_length * sizeof (guint));
}

static void
test_issuer_path_garbage (void)
{
  const char *files[] = { "leaf1-chain.pem", NULL };
  g_autoptr(GPtrArray) chain = load_chain (files);
  g_autoptr(GError) error = NULL;
  g_autofree guint *path = NULL;
  guint path_length = 0;

  g_ptr_array_add (chain, g_bytes_new_static ("\x30\x03garbage", 9));
  path = pin_tls_find_issuer_path ((GBytes *const *) chain->pdata, chain->len,
                                   &path_length, &error);

  g_assert_null (path);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
}

static void
test_issuer_path_empty (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree guint *path = NULL;
  guint path_length = 0;

  path = pin_tls_find_issuer_path (NULL, 0, &path_length, &error);

  g_assert_null (path);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
}

/* The leaf followed by many copies of its issuer. */
static GPtrArray *
hostile_chain (void)
{
  const char *files[] = { "leaf1.pem", NULL };
  GPtrArray *chain = load_chain (files);
  g_autoptr(GBytes) intermediate = load_first_der ("intA.pem");
  guint i;

  for (i = 0; i < HOSTILE_COPIES; i++)
    g_ptr_array_add (chain, g_bytes_ref (intermediate));

  return chain;
}

static void
test_hostile_chain (void)
{
  const char *intermediate[] = { "intA.pem", NULL };
  const char *root[] = { "rootA.pem", NULL };
  const guint expected_path[] = { 0, 1 };
  g_autoptr(GPtrArray) chain = hostile_chain ();
  g_autoptr(PinTlsPinSet) intermediate_pins = pins_for (intermediate, FALSE);
  g_autoptr(PinTlsPinSet) root_pins = pins_for (root, FALSE);
  g_autoptr(GError) path_error = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint *path = NULL;
  guint path_length = 0;

  path = pin_tls_find_issuer_path ((GBytes *const *) chain->pdata, chain->len,
                                   &path_length, &path_error);
  g_assert_no_error (path_error);
  g_assert_cmpmem (path, path_length * sizeof (guint), expected_path,
                   sizeof expected_path);

  g_assert_true (verify (intermediate_pins, chain, PIN_ONLY, "host.test", NULL,
                         &error));
  g_assert_no_error (error);

  g_assert_false (verify (root_pins, chain, PIN_ONLY, "host.test", NULL,
                          &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  assert_mentions (error->message, "more");
  g_assert_cmpuint (strlen (error->message), <, 4096);
}

/* In CA_AND_PINS mode the same chain is never accepted for a pin that
 * matches nothing on it. */
static void
test_hostile_chain_ca (void)
{
  const char *other[] = { "leaf2.pem", NULL };
  const char *roots[] = { "rootA.pem", NULL };
  g_autoptr(GPtrArray) chain = hostile_chain ();
  g_autoptr(PinTlsPinSet) pins = pins_for (other, FALSE);
  gnutls_x509_trust_list_t trust_list = trust_list_new (roots);
  g_autoptr(GError) error = NULL;
  gboolean accepted;

  accepted = verify (pins, chain, CA_AND_PINS, "host.test", trust_list, &error);
  trust_list_free (trust_list);

  g_assert_false (accepted);
  g_assert_nonnull (error);
}

int
main (int   argc,
      char *argv[])
{
  guint i;

  g_test_init (&argc, &argv, NULL);

  for (i = 0; i < G_N_ELEMENTS (verify_cases); i++)
    g_test_add_data_func (verify_cases[i].path, &verify_cases[i],
                          test_verify_case);
  g_test_add_data_func ("/pintls/verify/pin-only/empty-chain",
                        GINT_TO_POINTER (PIN_ONLY), test_verify_empty_chain);
  g_test_add_data_func ("/pintls/verify/ca-and-pins/empty-chain",
                        GINT_TO_POINTER (CA_AND_PINS), test_verify_empty_chain);
  g_test_add_data_func ("/pintls/verify/pin-only/empty-pin-set",
                        GINT_TO_POINTER (PIN_ONLY), test_verify_empty_pin_set);
  g_test_add_data_func ("/pintls/verify/ca-and-pins/empty-pin-set",
                        GINT_TO_POINTER (CA_AND_PINS),
                        test_verify_empty_pin_set);
  g_test_add_data_func ("/pintls/verify/pin-only/garbage",
                        GINT_TO_POINTER (PIN_ONLY), test_verify_garbage);
  g_test_add_data_func ("/pintls/verify/ca-and-pins/garbage",
                        GINT_TO_POINTER (CA_AND_PINS), test_verify_garbage);

  g_test_add_func ("/pintls/verify/mismatch-message/decoy",
                   test_mismatch_message_decoy);
  g_test_add_func ("/pintls/verify/mismatch-message/contents",
                   test_mismatch_message);
  g_test_add_func ("/pintls/verify/mismatch-message/bounded",
                   test_mismatch_message_bounded);
  g_test_add_func ("/pintls/verify/mismatch-message/certificate-pins",
                   test_mismatch_message_certificate_pins);

  for (i = 0; i < G_N_ELEMENTS (ca_flags_cases); i++)
    g_test_add_data_func (ca_flags_cases[i].path, &ca_flags_cases[i],
                          test_ca_flags);
  g_test_add_func ("/pintls/verify/failed-verification",
                   test_decision_failed_verification);
  g_test_add_func ("/pintls/verify/no-trust", test_decision_without_trust);

  for (i = 0; i < G_N_ELEMENTS (issuer_path_cases); i++)
    g_test_add_data_func (issuer_path_cases[i].path, &issuer_path_cases[i],
                          test_issuer_path);
  g_test_add_func ("/pintls/verify/issuer-path/garbage",
                   test_issuer_path_garbage);
  g_test_add_func ("/pintls/verify/issuer-path/empty", test_issuer_path_empty);

  g_test_add_func ("/pintls/verify/hostile-chain", test_hostile_chain);
  g_test_add_func ("/pintls/verify/hostile-chain-ca", test_hostile_chain_ca);

  return g_test_run ();
}
