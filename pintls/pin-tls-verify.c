/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The pin verdict: given the certificates a server presented, does a pin
 * match a certificate the server has proven or that is on a signed issuer
 * path from it, and, in CA_AND_PINS mode, does the chain validate for the
 * server name? Nothing here needs GIO objects: plain GnuTLS programs use it
 * through pin_tls_verify_chain() and pin_tls_session_enforce_pins(). */

#include "pin-tls-private.h"

#include <string.h>

/* Issuer candidates whose signature pintls will check per chain: bounds the
 * work a server can cause with many certificates sharing one subject. */
#define MAX_SIGNATURE_CHECKS 64

/* Presented certificates listed in a mismatch message. */
#define MAX_DESCRIBED_CERTIFICATES 8

PinTlsChain *
_pin_tls_chain_new (const gnutls_datum_t *der,
                    guint                 n_certs,
                    GError              **error)
{
  g_autoptr(PinTlsChain) chain = g_new0 (PinTlsChain, 1);
  guint i;

  if (n_certs == 0)
    {
      g_set_error_literal (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
                           "The server presented no certificate");
      return NULL;
    }

  chain->certs = g_new0 (gnutls_x509_crt_t, n_certs);
  chain->path = g_new0 (guint, n_certs);
  for (i = 0; i < n_certs; i++)
    {
      int ret;

      gnutls_x509_crt_init (&chain->certs[i]);
      chain->n_certs = i + 1;

      ret = gnutls_x509_crt_import (chain->certs[i], &der[i],
                                    GNUTLS_X509_FMT_DER);
      if (ret < 0)
        {
          g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
                       "Certificate %u the server presented is not valid "
                       "X.509: %s", i + 1, gnutls_strerror (ret));
          return NULL;
        }
    }

  return g_steal_pointer (&chain);
}

void
_pin_tls_chain_free (PinTlsChain *chain)
{
  guint i;

  for (i = 0; i < chain->n_certs; i++)
    gnutls_x509_crt_deinit (chain->certs[i]);
  g_clear_pointer (&chain->anchor, gnutls_x509_crt_deinit);
  g_free (chain->certs);
  g_free (chain->path);
  g_free (chain);
}

/* Whether @issuer signed @cert and may sign certificates at all: a CA
 * certificate (so neither a CA:FALSE nor an X.509 v1 certificate) whose
 * signature over @cert verifies. Dates are not looked at: they are the
 * business of CA validation. */
static gboolean
signed_by (gnutls_x509_crt_t cert,
           gnutls_x509_crt_t issuer)
{
  const unsigned flags = GNUTLS_VERIFY_DISABLE_TIME_CHECKS
                         | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS
                         | GNUTLS_VERIFY_DO_NOT_ALLOW_X509_V1_CA_CRT;
  unsigned status = 0;
  int ret;

  if (gnutls_x509_crt_get_ca_status (issuer, NULL) <= 0)
    return FALSE;

  ret = gnutls_x509_crt_verify (cert, &issuer, 1, flags, &status);

  return ret == 0 && status == 0;
}

static gboolean
is_self_issued (gnutls_x509_crt_t cert)
{
  return gnutls_x509_crt_check_issuer (cert, cert) != 0;
}

/* Finds, among the presented certificates not yet on the path, one whose
 * subject names @cert's issuer and whose signature over @cert verifies. */
static gboolean
find_presented_issuer (PinTlsChain *chain,
                       guint        cert_index,
                       gboolean    *on_path,
                       guint       *checks,
                       guint       *issuer_index)
{
  gnutls_x509_crt_t cert = chain->certs[cert_index];
  guint i;

  for (i = 0; i < chain->n_certs; i++)
    {
      if (on_path[i] || !gnutls_x509_crt_check_issuer (cert, chain->certs[i]))
        continue;
      if (++*checks > MAX_SIGNATURE_CHECKS)
        return FALSE;

      if (signed_by (cert, chain->certs[i]))
        {
          *issuer_index = i;
          return TRUE;
        }
    }

  return FALSE;
}

/* Builds the issuer path from the leaf: each next certificate is one the
 * server presented that verifiably signed the previous one, whatever order
 * the server sent them in. Certificates off the path never satisfy a pin.
 * With @trust, the path may end at a trust anchor the server did not send. */
void
_pin_tls_chain_build_path (PinTlsChain *chain,
                           PinTlsTrust *trust)
{
  g_autofree gboolean *on_path = g_new0 (gboolean, chain->n_certs);
  guint checks = 0;
  guint current = 0;
  guint next;
  gnutls_x509_crt_t anchor;

  chain->path[0] = 0;
  chain->path_length = 1;
  on_path[0] = TRUE;

  /* Once every presented certificate is on the path, none is left to be
   * the next issuer, and the costly self-issued check can be skipped. */
  while (chain->path_length < chain->n_certs
         && !is_self_issued (chain->certs[current])
         && find_presented_issuer (chain, current, on_path, &checks, &next))
    {
      chain->path[chain->path_length++] = next;
      on_path[next] = TRUE;
      current = next;
    }

  if (trust == NULL || is_self_issued (chain->certs[current]))
    return;

  anchor = trust->lookup_issuer (trust, chain->certs[current]);
  if (anchor != NULL && signed_by (chain->certs[current], anchor))
    chain->anchor = anchor;
  else if (anchor != NULL)
    gnutls_x509_crt_deinit (anchor);
}

GTlsCertificateFlags
_pin_tls_ca_flags_from_gnutls (int      result,
                               unsigned status)
{
  GTlsCertificateFlags flags = 0;

  /* A failed call says nothing good about the chain, whatever @status. */
  if (result < 0)
    return G_TLS_CERTIFICATE_GENERIC_ERROR;

  if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
    flags |= G_TLS_CERTIFICATE_UNKNOWN_CA;
  if (status & GNUTLS_CERT_NOT_ACTIVATED)
    flags |= G_TLS_CERTIFICATE_NOT_ACTIVATED;
  if (status & GNUTLS_CERT_EXPIRED)
    flags |= G_TLS_CERTIFICATE_EXPIRED;
  if (status & GNUTLS_CERT_REVOKED)
    flags |= G_TLS_CERTIFICATE_REVOKED;
  if (status & GNUTLS_CERT_INSECURE_ALGORITHM)
    flags |= G_TLS_CERTIFICATE_INSECURE;
  if (status & GNUTLS_CERT_UNEXPECTED_OWNER)
    flags |= G_TLS_CERTIFICATE_BAD_IDENTITY;
  if (status != 0 && flags == 0)
    flags |= G_TLS_CERTIFICATE_GENERIC_ERROR;

  return flags;
}

char *
_pin_tls_describe_ca_flags (GTlsCertificateFlags flags,
                            const char          *server_name)
{
  if ((flags & G_TLS_CERTIFICATE_BAD_IDENTITY) && server_name == NULL)
    return g_strdup ("The server certificate cannot be checked: no server "
                     "name was given");
  if (flags & G_TLS_CERTIFICATE_BAD_IDENTITY)
    return g_strdup_printf ("The server certificate does not match the "
                            "server name “%s”", server_name);
  if (flags & G_TLS_CERTIFICATE_UNKNOWN_CA)
    return g_strdup ("The server certificate is not trusted: it is not "
                     "signed by a known certificate authority");
  if (flags & G_TLS_CERTIFICATE_EXPIRED)
    return g_strdup ("The server certificate has expired");
  if (flags & G_TLS_CERTIFICATE_NOT_ACTIVATED)
    return g_strdup ("The server certificate is not valid yet");
  if (flags & G_TLS_CERTIFICATE_REVOKED)
    return g_strdup ("The server certificate has been revoked");
  if (flags & G_TLS_CERTIFICATE_INSECURE)
    return g_strdup ("The server certificate uses an insecure algorithm");

  return g_strdup ("The server certificate is not trusted");
}

static gboolean
is_on_path (PinTlsChain *chain,
            guint        index)
{
  guint i;

  for (i = 0; i < chain->path_length; i++)
    {
      if (chain->path[i] == index)
        return TRUE;
    }

  return FALSE;
}

/* The certificate pin of @der, as pin_tls_pin_set_to_strings() prints it,
 * after ", certificate ". */
static char *
describe_fingerprint (const gnutls_datum_t *der)
{
  g_autofree char *hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                      der->data, der->size);

  return g_strconcat (", certificate ", hex, NULL);
}

/* A certificate's public-key digest, taken when first needed, or the fact
 * that it has none. */
typedef struct
{
  gboolean computed;
  gboolean valid;
  guint8 digest[PIN_TLS_DIGEST_SIZE];
} SpkiDigest;

/* The public-key digest of presented certificate @index, from @digests,
 * which holds one slot per certificate: each costs an export of the key,
 * so it is taken once per verdict, and only when the matching or the
 * mismatch message looks at that certificate. */
static const SpkiDigest *
spki_digest (PinTlsChain *chain,
             SpkiDigest  *digests,
             guint        index)
{
  SpkiDigest *spki = &digests[index];

  if (!spki->computed)
    {
      spki->valid = _pin_tls_spki_digest (chain->certs[index], spki->digest);
      spki->computed = TRUE;
    }

  return spki;
}

/* The pin presented-pins lists for a certificate with public-key digest
 * @spki. */
static char *
format_presented_pin (const SpkiDigest *spki)
{
  if (!spki->valid)
    return g_strdup ("(unreadable public key)");

  return _pin_tls_format_spki_pin (spki->digest);
}

/* The public-key pin of each certificate in @der, as presented-pins and
 * pin reports list them. The verdict does not make them: most handshakes
 * never show them to anyone, and each costs a parse and a key export. */
char **
_pin_tls_presented_pins (const gnutls_datum_t *der,
                         guint                 n_certs)
{
  char **pins = g_new0 (char *, n_certs + 1);
  guint i;

  for (i = 0; i < n_certs; i++)
    {
      gnutls_x509_crt_t cert = NULL;
      SpkiDigest spki = { TRUE, FALSE, { 0 } };

      gnutls_x509_crt_init (&cert);
      if (gnutls_x509_crt_import (cert, &der[i], GNUTLS_X509_FMT_DER) == 0)
        spki.valid = _pin_tls_spki_digest (cert, spki.digest);
      gnutls_x509_crt_deinit (cert);

      pins[i] = format_presented_pin (&spki);
    }

  return pins;
}

/* One presented certificate: its public-key pin and subject, its
 * certificate pin if @fingerprint, and whether it can match at all. */
static char *
describe_certificate (PinTlsChain          *chain,
                      SpkiDigest           *digests,
                      guint                 index,
                      const gnutls_datum_t *der,
                      gboolean              fingerprint)
{
  gnutls_datum_t dn = { NULL, 0 };
  g_autofree char *pin = format_presented_pin (spki_digest (chain, digests, index));
  g_autofree char *subject = NULL;
  g_autofree char *certificate_pin = NULL;

  if (gnutls_x509_crt_get_dn3 (chain->certs[index], &dn, 0) == 0)
    subject = _pin_tls_describe_text ((const char *) dn.data);
  gnutls_free (dn.data);

  if (fingerprint)
    certificate_pin = describe_fingerprint (der);

  return g_strdup_printf ("%s (%s%s%s)", pin, subject ? subject : "no subject",
                          certificate_pin ? certificate_pin : "",
                          is_on_path (chain, index) ? ""
                                                    : ", not on the issuer path");
}

/* With certificate pins configured, each presented certificate is given
 * by its certificate pin too, so that the two can be compared. */
static void
set_mismatch_error (PinTlsDecision       *verdict,
                    PinTlsChain          *chain,
                    SpkiDigest           *digests,
                    const gnutls_datum_t *der,
                    PinTlsPinSet         *pins,
                    const char           *server_name)
{
  g_autofree char *configured = _pin_tls_pin_set_describe (pins);
  gboolean fingerprints = _pin_tls_pin_set_has_certificate_pins (pins);
  GString *presented = g_string_new (NULL);
  guint shown = MIN (chain->n_certs, MAX_DESCRIBED_CERTIFICATES);
  guint i;

  for (i = 0; i < shown; i++)
    {
      g_autofree char *entry =
        describe_certificate (chain, digests, i, &der[i], fingerprints);

      g_string_append_printf (presented, "%s%s", i > 0 ? "; " : "", entry);
    }
  if (shown < chain->n_certs)
    g_string_append_printf (presented, "; and %u more", chain->n_certs - shown);

  g_set_error (&verdict->error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH,
               "Pin mismatch for “%s”, update required: the server presented "
               "%s; the pins configured are %s",
               server_name ? server_name : "", presented->str, configured);
  g_string_free (presented, TRUE);
}

static gboolean
certificate_matches (const SpkiDigest     *spki,
                     const gnutls_datum_t *der,
                     PinTlsPinSet         *pins)
{
  guint8 digest[PIN_TLS_DIGEST_SIZE];

  if (spki->valid
      && _pin_tls_pin_set_contains (pins, PIN_TLS_PIN_KIND_SPKI, spki->digest))
    return TRUE;

  if (der == NULL || !_pin_tls_pin_set_has_certificate_pins (pins))
    return FALSE;

  gnutls_hash_fast (GNUTLS_DIG_SHA256, der->data, der->size, digest);
  return _pin_tls_pin_set_contains (pins, PIN_TLS_PIN_KIND_CERTIFICATE, digest);
}

static gboolean
anchor_matches (gnutls_x509_crt_t anchor,
                PinTlsPinSet     *pins)
{
  gnutls_datum_t der = { NULL, 0 };
  SpkiDigest spki;
  gboolean matched;

  /* A copy from a trust list exports; its key is matched even if not. */
  spki.valid = _pin_tls_spki_digest (anchor, spki.digest);
  if (gnutls_x509_crt_export2 (anchor, GNUTLS_X509_FMT_DER, &der) < 0)
    return certificate_matches (&spki, NULL, pins); /* GCOVR_EXCL_LINE */

  matched = certificate_matches (&spki, &der, pins);
  gnutls_free (der.data);

  return matched;
}

/* Where on the path a pin matched, if it did. */
typedef enum
{
  PATH_MATCH_NONE,
  PATH_MATCH_LEAF,
  PATH_MATCH_ISSUER,
} PathMatch;

static PathMatch
path_matches (PinTlsChain          *chain,
              const gnutls_datum_t *der,
              SpkiDigest           *digests,
              PinTlsPinSet         *pins)
{
  guint i;

  for (i = 0; i < chain->path_length; i++)
    {
      guint index = chain->path[i];

      if (certificate_matches (spki_digest (chain, digests, index), &der[index],
                               pins))
        return index == 0 ? PATH_MATCH_LEAF : PATH_MATCH_ISSUER;
    }

  if (chain->anchor != NULL && anchor_matches (chain->anchor, pins))
    return PATH_MATCH_ISSUER;

  return PATH_MATCH_NONE;
}

/* A pinned issuer vouches for every certificate it signs, whatever name
 * they carry; only the leaf's names say which server it is for. So when
 * no CA validation runs, a pin that matched an issuer rather than the leaf
 * still needs the leaf to name the server. */
static GTlsCertificateFlags
issuer_pin_identity_errors (PinTlsChain *chain,
                            const char  *server_name)
{
  if (server_name == NULL
      || !gnutls_x509_crt_check_hostname2 (chain->certs[0], server_name, 0))
    return G_TLS_CERTIFICATE_BAD_IDENTITY;

  return 0;
}

/* What stands between a pin match and acceptance. In CA_AND_PINS mode,
 * the chain's validation for the name; without a trust to ask, nothing is
 * trusted. In PIN_ONLY mode, for a pin that matched only an issuer, the
 * leaf's name: such a match does not vouch for a certificate naming
 * another server, so it stops counting as a match, and no
 * accept-certificate handler can restore it. */
static GTlsCertificateFlags
trust_errors (PinTlsDecision *verdict,
              PinTlsChain    *chain,
              PathMatch       match,
              PinTlsMode      mode,
              const char     *server_name,
              PinTlsTrust    *trust)
{
  GTlsCertificateFlags errors = 0;

  if (mode == PIN_TLS_MODE_CA_AND_PINS)
    return trust != NULL ? trust->verify (trust, chain, server_name)
                         : G_TLS_CERTIFICATE_UNKNOWN_CA;

  if (match == PATH_MATCH_ISSUER)
    errors = issuer_pin_identity_errors (chain, server_name);
  if (errors != 0)
    verdict->pin_matched = FALSE;

  return errors;
}

/* Computes the verdict on a presented chain. In CA_AND_PINS mode a chain
 * that does not validate is refused as untrusted even if a pin matches: a
 * pin never stands in for a failed CA or host name check. Without @pins
 * (a host a policy does not pin) the CA check alone decides. */
void
_pin_tls_decision_compute (PinTlsDecision       *verdict,
                           PinTlsPinSet         *pins,
                           const gnutls_datum_t *der,
                           guint                 n_certs,
                           PinTlsMode            mode,
                           const char           *server_name,
                           PinTlsTrust          *trust)
{
  g_autoptr(PinTlsChain) chain = NULL;
  g_autofree SpkiDigest *digests = NULL;
  gboolean check_ca = (mode == PIN_TLS_MODE_CA_AND_PINS || pins == NULL);
  PathMatch match;

  memset (verdict, 0, sizeof *verdict);

  if (pins != NULL && pin_tls_pin_set_get_size (pins) == 0)
    {
      g_set_error_literal (&verdict->error, PIN_TLS_ERROR,
                           PIN_TLS_ERROR_EMPTY_PIN_SET,
                           "The pin set holds no pins: make it with one of "
                           "the pin set constructors");
      return;
    }

  chain = _pin_tls_chain_new (der, n_certs, &verdict->error);
  if (chain == NULL)
    return;

  digests = g_new0 (SpkiDigest, n_certs);

  /* In PIN_ONLY mode a pinned leaf is the whole decision: the signatures
   * up the chain matter only to a pin on an issuer, so they are not
   * checked, and the path the verdict reports stops at the leaf. */
  if (!check_ca && certificate_matches (spki_digest (chain, digests, 0), &der[0],
                                        pins))
    {
      chain->path_length = 1;
      verdict->path_is_partial = n_certs > 1;
      match = PATH_MATCH_LEAF;
    }
  else
    {
      _pin_tls_chain_build_path (chain, check_ca ? trust : NULL);
      match = pins != NULL ? path_matches (chain, der, digests, pins)
                           : PATH_MATCH_NONE;
    }
  verdict->path = g_memdup2 (chain->path, chain->path_length * sizeof (guint));
  verdict->path_length = chain->path_length;
  verdict->pin_matched = pins == NULL || match != PATH_MATCH_NONE;
  verdict->ca_errors = trust_errors (verdict, chain, match,
                                     check_ca ? PIN_TLS_MODE_CA_AND_PINS : mode,
                                     server_name, trust);

  if (verdict->ca_errors != 0)
    {
      g_autofree char *reason =
        _pin_tls_describe_ca_flags (verdict->ca_errors, server_name);

      g_set_error_literal (&verdict->error, G_TLS_ERROR,
                           G_TLS_ERROR_BAD_CERTIFICATE, reason);
    }
  else if (!verdict->pin_matched)
    {
      set_mismatch_error (verdict, chain, digests, der, pins, server_name);
    }

  verdict->accepted = (verdict->error == NULL);
}

void
_pin_tls_decision_clear (PinTlsDecision *verdict)
{
  g_clear_error (&verdict->error);
  g_clear_pointer (&verdict->path, g_free);
}

/* Trust decisions from a GnuTLS trust list. */
typedef struct
{
  PinTlsTrust parent;
  gnutls_x509_trust_list_t list;
} PinTlsListTrust;

static GTlsCertificateFlags
list_trust_verify (PinTlsTrust *trust,
                   PinTlsChain *chain,
                   const char  *server_name)
{
  PinTlsListTrust *self = (PinTlsListTrust *) trust;
  gnutls_typed_vdata_st data[2];
  unsigned status = 0;
  int ret;

  if (server_name == NULL)
    return G_TLS_CERTIFICATE_BAD_IDENTITY;

  data[0].type = GNUTLS_DT_DNS_HOSTNAME;
  data[0].data = (guchar *) server_name;
  data[0].size = 0;
  data[1].type = GNUTLS_DT_KEY_PURPOSE_OID;
  data[1].data = (guchar *) GNUTLS_KP_TLS_WWW_SERVER;
  data[1].size = 0;

  ret = gnutls_x509_trust_list_verify_crt2 (self->list, chain->certs,
                                            chain->n_certs, data, 2, 0,
                                            &status, NULL);

  return _pin_tls_ca_flags_from_gnutls (ret, status);
}

static gnutls_x509_crt_t
list_trust_lookup_issuer (PinTlsTrust      *trust,
                          gnutls_x509_crt_t certificate)
{
  PinTlsListTrust *self = (PinTlsListTrust *) trust;
  gnutls_x509_crt_t issuer = NULL;

  if (gnutls_x509_trust_list_get_issuer (self->list, certificate, &issuer,
                                         GNUTLS_TL_GET_COPY) < 0)
    return NULL;

  return issuer;
}

PinTlsTrust *
_pin_tls_trust_new_for_list (gnutls_x509_trust_list_t list)
{
  PinTlsListTrust *self = g_new0 (PinTlsListTrust, 1);

  self->parent.verify = list_trust_verify;
  self->parent.lookup_issuer = list_trust_lookup_issuer;
  self->list = list;

  return &self->parent;
}

void
_pin_tls_trust_free (PinTlsTrust *trust)
{
  if (trust->destroy != NULL)
    trust->destroy (trust);
  g_free (trust);
}

/* The system's trust store, loaded once per process on first use. */
gnutls_x509_trust_list_t
_pin_tls_system_trust_list (GError **error)
{
  static gnutls_x509_trust_list_t system_list;
  static int load_result;

  if (g_once_init_enter (&system_list))
    {
      gnutls_x509_trust_list_t list;

      gnutls_x509_trust_list_init (&list, 0);
      load_result = gnutls_x509_trust_list_add_system_trust (list, 0, 0);
      g_once_init_leave (&system_list, list);
    }

  /* GCOVR_EXCL_START: only on a machine whose trust store is unreadable */
  if (load_result < 0)
    {
      g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC,
                   "Cannot load the system trust store: %s",
                   gnutls_strerror (load_result));
      return NULL;
    }
  /* GCOVR_EXCL_STOP */

  return system_list;
}

/**
 * pin_tls_verify_chain: (skip)
 * @pins: the pins the server must match
 * @chain: (array length=chain_length): the DER certificates the server
 *   presented, leaf first, as `gnutls_certificate_get_peers()` returns them
 * @chain_length: the number of certificates in @chain
 * @mode: how the server is trusted
 * @server_name: (nullable): the server's host name or IP address, needed in
 *   %PIN_TLS_MODE_CA_AND_PINS mode
 * @trust_list: (nullable): the trust anchors for %PIN_TLS_MODE_CA_AND_PINS
 *   mode, or %NULL for the system's trust store
 * @error: return location for a #GError
 *
 * Decides whether a server's certificate chain satisfies @pins. This is the
 * decision every pintls connection makes; it needs no GIO object and no
 * connection.
 *
 * The leaf certificate always counts: the handshake proves its key. Another
 * certificate counts only if it is on the issuer path from the leaf, each
 * step checked by signature and made by a CA certificate; a certificate the
 * server merely appended never satisfies a pin. In
 * %PIN_TLS_MODE_CA_AND_PINS mode the path may end at a trust anchor of
 * @trust_list, whose pin then counts too, and the chain must validate for
 * @server_name before any pin is looked at. In %PIN_TLS_MODE_PIN_ONLY mode
 * a pin on the leaf is the whole decision, but a pin that matches only an
 * issuer also needs the leaf to name @server_name: the issuer signs
 * certificates for other servers too.
 *
 * The error is %PIN_TLS_ERROR_PIN_MISMATCH when no eligible certificate is
 * pinned, with a message listing the presented and the configured pins,
 * %PIN_TLS_ERROR_EMPTY_PIN_SET for a set that holds no pins, and
 * %G_TLS_ERROR_BAD_CERTIFICATE when the chain is empty, unreadable, not
 * trusted for @server_name (in %PIN_TLS_MODE_CA_AND_PINS mode), or pinned
 * only through an issuer while the leaf does not name @server_name.
 *
 * Returns: %TRUE if the chain is accepted
 */
gboolean
pin_tls_verify_chain (PinTlsPinSet            *pins,
                      const gnutls_datum_t    *chain,
                      guint                    chain_length,
                      PinTlsMode               mode,
                      const char              *server_name,
                      gnutls_x509_trust_list_t trust_list,
                      GError                 **error)
{
  g_autofree char *name = NULL;
  PinTlsTrust *trust = NULL;
  PinTlsDecision verdict;
  gboolean accepted;

  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (pins), FALSE);
  g_return_val_if_fail (chain != NULL || chain_length == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (server_name != NULL)
    {
      name = _pin_tls_normalize_host_name (server_name, error);
      if (name == NULL)
        return FALSE;
    }

  if (mode == PIN_TLS_MODE_CA_AND_PINS)
    {
      if (trust_list == NULL)
        trust_list = _pin_tls_system_trust_list (error);
      if (trust_list == NULL)
        return FALSE; /* GCOVR_EXCL_LINE: an unreadable system trust store */
      trust = _pin_tls_trust_new_for_list (trust_list);
    }

  _pin_tls_decision_compute (&verdict, pins, chain, chain_length, mode, name,
                             trust);
  g_clear_pointer (&trust, _pin_tls_trust_free);

  accepted = verdict.accepted;
  if (!accepted)
    g_propagate_error (error, g_steal_pointer (&verdict.error));
  _pin_tls_decision_clear (&verdict);

  return accepted;
}

/**
 * pin_tls_find_issuer_path:
 * @chain: (array length=chain_length): DER certificates as a server
 *   presented them, leaf first
 * @chain_length: the number of certificates in @chain
 * @path_length: (out): return location for the length of the path
 * @error: return location for a #GError
 *
 * Finds the issuer path from the leaf through the presented certificates,
 * each step checked by signature, as pintls does before matching pins. Only
 * certificates on this path can satisfy a pin; the others were merely sent.
 *
 * The error is %G_TLS_ERROR_BAD_CERTIFICATE if @chain is empty or holds
 * something that is not a certificate.
 *
 * Returns: (transfer full) (array length=path_length): indices into @chain
 *   of the certificates on the path, starting with 0 for the leaf, or %NULL
 *   on error
 */
guint *
pin_tls_find_issuer_path (GBytes *const *chain,
                          guint          chain_length,
                          guint         *path_length,
                          GError       **error)
{
  g_autofree gnutls_datum_t *der = g_new0 (gnutls_datum_t, chain_length);
  g_autoptr(PinTlsChain) parsed = NULL;
  guint i;

  g_return_val_if_fail (chain != NULL || chain_length == 0, NULL);
  g_return_val_if_fail (path_length != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  for (i = 0; i < chain_length; i++)
    {
      gsize size;

      der[i].data = (guchar *) g_bytes_get_data (chain[i], &size);
      der[i].size = size;
    }

  parsed = _pin_tls_chain_new (der, chain_length, error);
  if (parsed == NULL)
    return NULL;

  _pin_tls_chain_build_path (parsed, NULL);
  *path_length = parsed->path_length;

  return g_memdup2 (parsed->path, parsed->path_length * sizeof (guint));
}
