/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The GIO side of certificates: GTlsCertificate objects for a peer chain,
 * and a GTlsDatabase as the trust behind CA_AND_PINS mode. */

#include "pin-tls-private.h"

static GTlsCertificate *
certificate_new (GBytes          *der,
                 GTlsCertificate *issuer,
                 GError         **error)
{
  GTlsBackend *backend = g_tls_backend_get_default ();
  g_autoptr(GByteArray) array = g_byte_array_new ();
  gsize size;
  const guint8 *data = g_bytes_get_data (der, &size);

  g_byte_array_append (array, data, size);

  return g_initable_new (g_tls_backend_get_certificate_type (backend), NULL,
                         error, "certificate", array, "issuer", issuer, NULL);
}

/* Builds the GTlsCertificate for a chain given leaf first, each
 * certificate's issuer the next one. An issuer is a construct-only
 * property, so the chain is built from its top down. */
GTlsCertificate *
_pin_tls_certificate_new_from_path (GPtrArray *der_path,
                                    GError   **error)
{
  g_autoptr(GTlsCertificate) issuer = NULL;
  guint i;

  for (i = der_path->len; i > 0; i--)
    {
      GTlsCertificate *cert;

      cert = certificate_new (g_ptr_array_index (der_path, i - 1), issuer, error);
      if (cert == NULL)
        return NULL;

      g_set_object (&issuer, cert);
      g_object_unref (cert);
    }

  return g_steal_pointer (&issuer);
}

/* The DER certificates of @certificate and its issuers, leaf first. */
GPtrArray *
_pin_tls_certificate_chain_der (GTlsCertificate *certificate)
{
  GPtrArray *chain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  GTlsCertificate *link;

  for (link = certificate; link != NULL; link = g_tls_certificate_get_issuer (link))
    {
      GByteArray *der = NULL;

      g_object_get (link, "certificate", &der, NULL);
      if (der == NULL)
        break;

      /* A copy: the array may be the certificate's own, if a subclass
       * hands out a reference rather than a new array. */
      g_ptr_array_add (chain, g_bytes_new (der->data, der->len));
      g_byte_array_unref (der);
      if (chain->len > PIN_TLS_MAX_CHAIN_LENGTH)
        break;
    }

  return chain;
}

/* A view of @chain (GBytes) as the datum array GnuTLS takes; it borrows the
 * bytes, so @chain must outlive it. */
gnutls_datum_t *
_pin_tls_datums_from_bytes (GPtrArray *chain)
{
  gnutls_datum_t *datums = g_new0 (gnutls_datum_t, MAX (chain->len, 1));
  guint i;

  for (i = 0; i < chain->len; i++)
    {
      gsize size;

      datums[i].data = (guchar *) g_bytes_get_data (g_ptr_array_index (chain, i), &size);
      datums[i].size = size;
    }

  return datums;
}

typedef struct
{
  PinTlsTrust parent;
  GTlsDatabase *database;
  GTlsInteraction *interaction;
  gboolean flags_known;           /* the database has judged this chain */
  GTlsCertificateFlags known_flags;
} PinTlsDatabaseTrust;

static GBytes *
export_der (gnutls_x509_crt_t certificate)
{
  gnutls_datum_t der = { NULL, 0 };
  GBytes *bytes;

  /* Every certificate here was imported from DER, so it exports again;
   * the check only keeps a failure from becoming a crash. */
  if (gnutls_x509_crt_export2 (certificate, GNUTLS_X509_FMT_DER, &der) < 0)
    return NULL; /* GCOVR_EXCL_LINE */

  bytes = g_bytes_new (der.data, der.size);
  gnutls_free (der.data);

  return bytes;
}

static GTlsCertificate *
path_certificate (PinTlsChain *chain,
                  GError     **error)
{
  g_autoptr(GPtrArray) der_path = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  guint i;

  for (i = 0; i < chain->path_length; i++)
    {
      GBytes *der = export_der (chain->certs[chain->path[i]]);

      /* GCOVR_EXCL_START: export_der () does not fail on these */
      if (der == NULL)
        {
          g_set_error_literal (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
                               "Cannot export a server certificate");
          return NULL;
        }
      /* GCOVR_EXCL_STOP */
      g_ptr_array_add (der_path, der);
    }

  return _pin_tls_certificate_new_from_path (der_path, error);
}

static GTlsCertificateFlags
database_trust_verify (PinTlsTrust *trust,
                       PinTlsChain *chain,
                       const char  *server_name)
{
  PinTlsDatabaseTrust *self = (PinTlsDatabaseTrust *) trust;
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(GError) error = NULL;
  GTlsCertificateFlags flags;

  if (self->flags_known)
    return self->known_flags;
  if (self->database == NULL)
    return G_TLS_CERTIFICATE_UNKNOWN_CA;
  if (server_name == NULL)
    return G_TLS_CERTIFICATE_BAD_IDENTITY;

  /* The TLS backend reads DER that GnuTLS has already parsed; only an
   * export failure, which does not happen, would end here. */
  certificate = path_certificate (chain, &error);
  if (certificate == NULL)
    return G_TLS_CERTIFICATE_GENERIC_ERROR; /* GCOVR_EXCL_LINE */

  identity = g_network_address_new (server_name, 0);
  flags = g_tls_database_verify_chain (self->database, certificate,
                                       G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER,
                                       identity, self->interaction,
                                       G_TLS_DATABASE_VERIFY_NONE, NULL, &error);

  return error != NULL ? G_TLS_CERTIFICATE_GENERIC_ERROR : flags;
}

static gnutls_x509_crt_t
database_trust_lookup_issuer (PinTlsTrust      *trust,
                              gnutls_x509_crt_t certificate)
{
  PinTlsDatabaseTrust *self = (PinTlsDatabaseTrust *) trust;
  g_autoptr(GBytes) der = export_der (certificate);
  g_autoptr(GPtrArray) der_path = g_ptr_array_new ();
  g_autoptr(GTlsCertificate) subject = NULL;
  g_autoptr(GTlsCertificate) issuer = NULL;
  g_autoptr(GByteArray) issuer_der = NULL;
  gnutls_x509_crt_t result;
  gnutls_datum_t datum;

  if (self->database == NULL || der == NULL)
    return NULL;

  g_ptr_array_add (der_path, der);
  subject = _pin_tls_certificate_new_from_path (der_path, NULL);
  if (subject != NULL)
    issuer = g_tls_database_lookup_certificate_issuer (self->database, subject,
                                                       self->interaction,
                                                       G_TLS_DATABASE_LOOKUP_NONE,
                                                       NULL, NULL);
  if (issuer == NULL)
    return NULL;

  g_object_get (issuer, "certificate", &issuer_der, NULL);
  datum.data = issuer_der->data;
  datum.size = issuer_der->len;

  /* The database's certificates are ones its backend could parse. */
  gnutls_x509_crt_init (&result);
  if (gnutls_x509_crt_import (result, &datum, GNUTLS_X509_FMT_DER) < 0)
    g_clear_pointer (&result, gnutls_x509_crt_deinit); /* GCOVR_EXCL_LINE */

  return result;
}

static void
database_trust_destroy (PinTlsTrust *trust)
{
  PinTlsDatabaseTrust *self = (PinTlsDatabaseTrust *) trust;

  g_clear_object (&self->database);
  g_clear_object (&self->interaction);
}

/* Trust decisions from a GTlsDatabase, as GIO's own TLS connections make
 * them. A NULL database trusts nothing. */
PinTlsTrust *
_pin_tls_trust_new_for_database (GTlsDatabase    *database,
                                 GTlsInteraction *interaction)
{
  PinTlsDatabaseTrust *self = g_new0 (PinTlsDatabaseTrust, 1);

  self->parent.verify = database_trust_verify;
  self->parent.lookup_issuer = database_trust_lookup_issuer;
  self->parent.destroy = database_trust_destroy;
  g_set_object (&self->database, database);
  g_set_object (&self->interaction, interaction);

  return &self->parent;
}

/* Like _pin_tls_trust_new_for_database(), for a chain the database has
 * already judged: its verdict is @flags, and it is only asked for issuers. */
PinTlsTrust *
_pin_tls_trust_new_for_database_result (GTlsDatabase        *database,
                                        GTlsInteraction     *interaction,
                                        GTlsCertificateFlags flags)
{
  PinTlsDatabaseTrust *self =
    (PinTlsDatabaseTrust *) _pin_tls_trust_new_for_database (database, interaction);

  self->flags_known = TRUE;
  self->known_flags = flags;

  return &self->parent;
}
