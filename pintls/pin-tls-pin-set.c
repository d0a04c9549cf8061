/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * PinTlsPinSet:
 *
 * The certificates and public keys a client trusts for one server.
 *
 * A pin set is built once, from pin strings, a file or certificates, and
 * never changes afterwards. Every pin is decoded when the set is built, so a
 * typing mistake in a pin is an error at start-up, never a silently ignored
 * pin at connection time. A set always holds at least one pin.
 *
 * Two kinds of pin exist:
 *
 * - a public-key pin, the SHA-256 digest of a certificate's
 *   SubjectPublicKeyInfo. It survives certificate renewal with the same key.
 *   It is written `sha256/BASE64` (OkHttp, Android), `sha256//BASE64`
 *   (curl), `pin-sha256="BASE64"` (HPKP) or `pin-sha256:BASE64` (what
 *   `certtool -i` prints). Base64 may use the URL-safe alphabet and may
 *   omit its padding.
 * - a certificate pin, the SHA-256 digest of a whole DER certificate, as
 *   rustls-pin pins certificates. It is written as 64 hex digits, with or
 *   without colons or spaces between bytes, in either case, or given as the
 *   certificate itself.
 *
 * One string may hold several pins separated by `;` or `,`.
 *
 * ```c
 * const char *pins[] = {
 *   "sha256/9sIXB7AFCxCp9agAXxemtPHN1m66/FkBo8xkhVRAKJY=",  // current key
 *   "sha256/8zltXZdFLnvpK5nfuki0hdDBmaXaDYSnlsJzw41l1+M=",  // next key
 *   NULL
 * };
 * g_autoptr(GError) error = NULL;
 * g_autoptr(PinTlsPinSet) set = pin_tls_pin_set_new (pins, &error);
 *
 * if (set == NULL)
 *   g_printerr ("Bad pin configuration: %s\n", error->message);
 * ```
 *
 * SHA-1 digests, digests of the wrong length and the SHA-256 digest of empty
 * input (a common placeholder) are refused.
 *
 * A set made with g_object_new() instead of a constructor holds no pins;
 * every verdict on it fails with %PIN_TLS_ERROR_EMPTY_PIN_SET.
 */

#include "pin-tls-private.h"

#include <string.h>

typedef struct
{
  PinTlsPinKind kind;
  guint8 digest[PIN_TLS_DIGEST_SIZE];
} PinTlsPin;

struct _PinTlsPinSet
{
  GObject parent_instance;

  GArray *pins;             /* PinTlsPin, first-given order, no duplicates */
  GHashTable *lookup;       /* the same pins, as a set */
  guint n_certificate_pins; /* how many are of whole certificates */
  guint8 set_digest[PIN_TLS_DIGEST_SIZE];
};

G_DEFINE_FINAL_TYPE (PinTlsPinSet, pin_tls_pin_set, G_TYPE_OBJECT)

/* SHA-256 of empty input: a placeholder that pin generators have printed
 * by mistake. It can never be a real key or certificate. */
static const guint8 empty_input_digest[PIN_TLS_DIGEST_SIZE] = {
  0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
  0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
  0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};

#define SHA1_DIGEST_SIZE 20
#define MD5_DIGEST_SIZE 16

static guint
pin_hash (gconstpointer key)
{
  const PinTlsPin *pin = key;
  guint hash;

  /* The digest is already uniformly distributed. */
  memcpy (&hash, pin->digest, sizeof hash);

  return hash ^ pin->kind;
}

static gboolean
pin_equal (gconstpointer a,
           gconstpointer b)
{
  const PinTlsPin *pin_a = a;
  const PinTlsPin *pin_b = b;

  return pin_a->kind == pin_b->kind
         && gnutls_memcmp (pin_a->digest, pin_b->digest,
                           PIN_TLS_DIGEST_SIZE) == 0;
}

static int
pin_compare (gconstpointer a,
             gconstpointer b)
{
  const PinTlsPin *pin_a = a;
  const PinTlsPin *pin_b = b;

  if (pin_a->kind != pin_b->kind)
    return pin_a->kind < pin_b->kind ? -1 : 1;

  return memcmp (pin_a->digest, pin_b->digest, PIN_TLS_DIGEST_SIZE);
}

static void
pin_tls_pin_set_finalize (GObject *object)
{
  PinTlsPinSet *self = PIN_TLS_PIN_SET (object);

  g_clear_pointer (&self->lookup, g_hash_table_unref);
  g_clear_pointer (&self->pins, g_array_unref);

  G_OBJECT_CLASS (pin_tls_pin_set_parent_class)->finalize (object);
}

static void
pin_tls_pin_set_class_init (PinTlsPinSetClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = pin_tls_pin_set_finalize;
}

static void
pin_tls_pin_set_init (PinTlsPinSet *self)
{
  self->pins = g_array_new (FALSE, FALSE, sizeof (PinTlsPin));
  self->lookup = g_hash_table_new_full (pin_hash, pin_equal, g_free, NULL);
}

/* Adds @pin unless the set already holds it. Only used while building. */
static void
add_pin (PinTlsPinSet    *self,
         const PinTlsPin *pin)
{
  if (g_hash_table_contains (self->lookup, pin))
    return;

  g_hash_table_add (self->lookup, g_memdup2 (pin, sizeof *pin));
  g_array_append_val (self->pins, *pin);
  if (pin->kind == PIN_TLS_PIN_KIND_CERTIFICATE)
    self->n_certificate_pins++;
}

/* Computes the digest that identifies the set's contents whatever order
 * the pins came in. Done once every pin is in. */
static PinTlsPinSet *
freeze_set (PinTlsPinSet *self)
{
  g_autoptr(GArray) sorted = g_array_copy (self->pins);

  g_array_sort (sorted, pin_compare);
  gnutls_hash_fast (GNUTLS_DIG_SHA256, sorted->data,
                    sorted->len * sizeof (PinTlsPin), self->set_digest);

  return self;
}

/* Freezes the set, or refuses it and frees it if it holds no pin. */
static PinTlsPinSet *
finish_set (PinTlsPinSet *self,
            const char   *source,
            GError      **error)
{
  if (self->pins->len == 0)
    {
      g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_EMPTY_PIN_SET,
                   "%s holds no pins: a pin set needs at least one", source);
      g_object_unref (self);
      return NULL;
    }

  return freeze_set (self);
}

static PinTlsPinSet *
pin_set_new_empty (void)
{
  return g_object_new (PIN_TLS_TYPE_PIN_SET, NULL);
}

static gboolean
reject_digest_length (gsize       length,
                      const char *text,
                      GError    **error)
{
  g_autofree char *shown = _pin_tls_describe_text (text);

  if (length == SHA1_DIGEST_SIZE)
    g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_PIN,
                 "Invalid pin %s: it holds a 20-byte SHA-1 digest; pintls "
                 "only accepts SHA-256 pins (32 bytes)", shown);
  else if (length == MD5_DIGEST_SIZE)
    g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_PIN,
                 "Invalid pin %s: it holds a 16-byte MD5 digest; pintls "
                 "only accepts SHA-256 pins (32 bytes)", shown);
  else
    g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_PIN,
                 "Invalid pin %s: the digest is %" G_GSIZE_FORMAT " bytes "
                 "long; a SHA-256 digest is 32", shown, length);

  return FALSE;
}

static gboolean
invalid_pin (const char *text,
             const char *reason,
             GError    **error)
{
  g_autofree char *shown = _pin_tls_describe_text (text);

  g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_PIN,
               "Invalid pin %s: %s", shown, reason);
  return FALSE;
}

/* Checks the alphabet and the padding of @encoded, accepting the standard
 * and the URL-safe alphabets and missing padding, and returns it rewritten
 * in the standard alphabet with padding, ready for g_base64_decode(). */
static char *
normalize_base64 (const char *encoded)
{
  gsize length = strlen (encoded);
  gsize padding = 0;
  gboolean standard = FALSE;
  gboolean url_safe = FALSE;
  GString *normal;
  gsize i;

  while (padding < length && padding < 2 && encoded[length - 1 - padding] == '=')
    padding++;
  length -= padding;

  if (length == 0 || length % 4 == 1)
    return NULL;
  if (padding > 0 && (length + padding) % 4 != 0)
    return NULL;

  normal = g_string_sized_new (length + 3);
  for (i = 0; i < length; i++)
    {
      char c = encoded[i];

      standard |= (c == '+' || c == '/');
      url_safe |= (c == '-' || c == '_');

      if (c == '-')
        c = '+';
      else if (c == '_')
        c = '/';
      else if (!g_ascii_isalnum (c) && c != '+' && c != '/')
        break;

      g_string_append_c (normal, c);
    }

  if (i < length || (standard && url_safe))
    return (g_string_free (normal, TRUE), NULL);

  while (normal->len % 4 != 0)
    g_string_append_c (normal, '=');

  return g_string_free (normal, FALSE);
}

static gboolean
decode_base64_digest (const char *encoded,
                      const char *text,
                      guint8     *digest,
                      GError    **error)
{
  g_autofree char *normal = normalize_base64 (encoded);
  g_autofree guchar *decoded = NULL;
  gsize length;

  if (normal == NULL)
    return invalid_pin (text, "the digest is not valid base64", error);

  decoded = g_base64_decode (normal, &length);
  if (length != PIN_TLS_DIGEST_SIZE)
    return reject_digest_length (length, text, error);

  memcpy (digest, decoded, PIN_TLS_DIGEST_SIZE);
  return TRUE;
}

static gboolean
looks_like_hex (const char *text)
{
  gboolean has_digit = FALSE;

  for (; *text != '\0'; text++)
    {
      if (g_ascii_isxdigit (*text))
        has_digit = TRUE;
      else if (*text != ':' && *text != ' ')
        return FALSE;
    }

  return has_digit;
}

static gboolean
decode_hex_digest (const char *text,
                   guint8     *digest,
                   GError    **error)
{
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  const char *p = text;

  while (*p != '\0')
    {
      guint8 byte;

      if (*p == ':' || *p == ' ')
        {
          p++;
          continue;
        }
      if (!g_ascii_isxdigit (p[1]))
        return invalid_pin (text, "hex digits must come in pairs", error);

      byte = g_ascii_xdigit_value (p[0]) << 4 | g_ascii_xdigit_value (p[1]);
      g_byte_array_append (bytes, &byte, 1);
      p += 2;
    }

  if (bytes->len != PIN_TLS_DIGEST_SIZE)
    return reject_digest_length (bytes->len, text, error);

  memcpy (digest, bytes->data, PIN_TLS_DIGEST_SIZE);
  return TRUE;
}

static gboolean
has_prefix_nocase (const char  *text,
                   const char  *prefix,
                   const char **rest)
{
  gsize length = strlen (prefix);

  if (g_ascii_strncasecmp (text, prefix, length) != 0)
    return FALSE;

  *rest = text + length;
  return TRUE;
}

/* Decodes the base64 after "sha256/". curl writes "sha256//", but a
 * digest whose base64 starts with '/' also reads "sha256//" in OkHttp's
 * spelling. Only one reading can decode to 32 bytes. */
static gboolean
decode_slash_digest (const char *rest,
                     const char *text,
                     guint8     *digest,
                     GError    **error)
{
  if (rest[0] == '/' && decode_base64_digest (rest, text, digest, NULL))
    return TRUE;

  return decode_base64_digest (rest[0] == '/' ? rest + 1 : rest, text, digest,
                               error);
}

/* Decodes the quoted base64 after "pin-sha256=". */
static gboolean
decode_hpkp_digest (const char *rest,
                    const char *text,
                    guint8     *digest,
                    GError    **error)
{
  g_autofree char *inner = NULL;
  gsize length = strlen (rest);

  if (length < 2 || rest[0] != '"' || rest[length - 1] != '"')
    return invalid_pin (text, "an HPKP pin is written pin-sha256=\"BASE64\"",
                        error);

  inner = g_strndup (rest + 1, length - 2);
  return decode_base64_digest (inner, text, digest, error);
}

/* Decodes one pin, already trimmed, in any syntax the set accepts. */
static gboolean
parse_pin (const char *text,
           PinTlsPin  *pin,
           GError    **error)
{
  const char *rest;
  gboolean decoded;

  pin->kind = PIN_TLS_PIN_KIND_SPKI;
  if (has_prefix_nocase (text, "sha256/", &rest))
    decoded = decode_slash_digest (rest, text, pin->digest, error);
  else if (has_prefix_nocase (text, "pin-sha256:", &rest))
    decoded = decode_base64_digest (rest, text, pin->digest, error);
  else if (has_prefix_nocase (text, "pin-sha256=", &rest))
    decoded = decode_hpkp_digest (rest, text, pin->digest, error);
  else if (has_prefix_nocase (text, "sha1/", &rest)
           || has_prefix_nocase (text, "pin-sha1", &rest))
    {
      return invalid_pin (text, "SHA-1 pins are not supported; give the "
                          "SHA-256 pin (sha256/…) of the same key", error);
    }
  else if (looks_like_hex (text))
    {
      pin->kind = PIN_TLS_PIN_KIND_CERTIFICATE;
      decoded = decode_hex_digest (text, pin->digest, error);
    }
  else
    {
      return invalid_pin (text, "unknown pin format; expected sha256/BASE64, "
                          "sha256//BASE64, pin-sha256=\"BASE64\", "
                          "pin-sha256:BASE64 or a 64-digit hex certificate "
                          "fingerprint", error);
    }

  if (decoded && memcmp (pin->digest, empty_input_digest,
                         PIN_TLS_DIGEST_SIZE) == 0)
    return invalid_pin (text, "this is the SHA-256 digest of empty input, a "
                        "placeholder rather than the digest of a key or "
                        "certificate", error);

  return decoded;
}

/* Adds every pin of @text, which may hold several separated by ';' or ','. */
static gboolean
add_pins_from_text (PinTlsPinSet *self,
                    const char   *text,
                    GError      **error)
{
  g_auto(GStrv) pieces = g_strsplit_set (text, ";,", -1);
  guint added = 0;
  guint i;

  for (i = 0; pieces[i] != NULL; i++)
    {
      const char *piece = g_strstrip (pieces[i]);
      PinTlsPin pin;

      if (*piece == '\0')
        continue;
      if (!parse_pin (piece, &pin, error))
        return FALSE;

      add_pin (self, &pin);
      added++;
    }

  if (added == 0)
    return invalid_pin (text, "no pin given", error);

  return TRUE;
}

/**
 * pin_tls_pin_set_new:
 * @pins: (array zero-terminated=1): pins in any of the accepted syntaxes
 * @error: return location for a #GError
 *
 * Creates a pin set from pin strings. The syntaxes may be mixed freely, and
 * one string may hold several pins separated by `;` or `,`. Surrounding
 * white space is ignored; duplicates count once.
 *
 * The error is %PIN_TLS_ERROR_INVALID_PIN, naming the offending text, if a
 * pin cannot be decoded, and %PIN_TLS_ERROR_EMPTY_PIN_SET if @pins is empty.
 *
 * Returns: (transfer full): a new pin set, or %NULL on error
 */
PinTlsPinSet *
pin_tls_pin_set_new (const char *const *pins,
                     GError           **error)
{
  PinTlsPinSet *self;
  guint i;

  g_return_val_if_fail (pins != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = pin_set_new_empty ();
  for (i = 0; pins[i] != NULL; i++)
    {
      if (!add_pins_from_text (self, pins[i], error))
        return (g_object_unref (self), NULL);
    }

  return finish_set (self, "The pin list", error);
}

static void
add_certificate_pin (PinTlsPinSet         *self,
                     const gnutls_datum_t *der)
{
  PinTlsPin pin = { PIN_TLS_PIN_KIND_CERTIFICATE, { 0 } };

  gnutls_hash_fast (GNUTLS_DIG_SHA256, der->data, der->size, pin.digest);
  add_pin (self, &pin);
}

static gboolean
add_pem_certificates (PinTlsPinSet         *self,
                      const char           *path,
                      const gnutls_datum_t *contents,
                      GError              **error)
{
  gnutls_x509_crt_t *certs = NULL;
  unsigned int n_certs = 0;
  unsigned int i;
  int ret;

  ret = gnutls_x509_crt_list_import2 (&certs, &n_certs, contents,
                                      GNUTLS_X509_FMT_PEM, 0);
  if (ret < 0)
    {
      g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_FILE,
                   "“%s” does not hold valid PEM certificates: %s", path,
                   gnutls_strerror (ret));
      return FALSE;
    }

  for (i = 0; i < n_certs; i++)
    {
      gnutls_datum_t der = { NULL, 0 };

      if (gnutls_x509_crt_export2 (certs[i], GNUTLS_X509_FMT_DER, &der) == 0)
        add_certificate_pin (self, &der);
      gnutls_free (der.data);
      gnutls_x509_crt_deinit (certs[i]);
    }
  gnutls_free (certs);

  return TRUE;
}

/* Whether @line holds something written as a pin, well-formed or not. */
static gboolean
line_holds_pin (const char *line)
{
  g_auto(GStrv) pieces = g_strsplit_set (line, ";,", -1);
  guint i;

  for (i = 0; pieces[i] != NULL; i++)
    {
      const char *piece = g_strstrip (pieces[i]);
      const char *rest;
      PinTlsPin pin;

      if (has_prefix_nocase (piece, "sha256/", &rest)
          || has_prefix_nocase (piece, "sha1/", &rest)
          || has_prefix_nocase (piece, "pin-sha", &rest)
          || parse_pin (piece, &pin, NULL))
        return TRUE;
    }

  return FALSE;
}

/* GnuTLS skips the text around the PEM blocks of a certificate file, where
 * tools write subject lines and comments. A pin there would be skipped as
 * silently: a file that mixes pins and certificates is refused. */
static gboolean
check_text_around_pem (const char *path,
                       const char *contents,
                       GError    **error)
{
  g_auto(GStrv) lines = g_strsplit (contents, "\n", -1);
  gboolean in_block = FALSE;
  guint i;

  for (i = 0; lines[i] != NULL; i++)
    {
      char *comment = strchr (lines[i], '#');
      const char *line;

      if (g_str_has_prefix (g_strchug (lines[i]), "-----BEGIN "))
        in_block = TRUE;
      else if (g_str_has_prefix (lines[i], "-----END "))
        in_block = FALSE;
      if (in_block)
        continue;

      if (comment != NULL)
        *comment = '\0';
      line = g_strstrip (lines[i]);

      if (line_holds_pin (line))
        {
          g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_FILE,
                       "%s:%u: a pin in a file of certificates; give pins "
                       "and certificates in separate files", path, i + 1);
          return FALSE;
        }
    }

  return TRUE;
}

static gboolean
add_der_certificate (PinTlsPinSet         *self,
                     const char           *path,
                     const gnutls_datum_t *contents,
                     GError              **error)
{
  gnutls_x509_crt_t cert;
  int ret;

  gnutls_x509_crt_init (&cert);
  ret = gnutls_x509_crt_import (cert, contents, GNUTLS_X509_FMT_DER);
  gnutls_x509_crt_deinit (cert);

  if (ret < 0)
    {
      g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_FILE,
                   "“%s” is neither a certificate nor a list of pins: %s",
                   path, gnutls_strerror (ret));
      return FALSE;
    }

  add_certificate_pin (self, contents);
  return TRUE;
}

static gboolean
add_pin_lines (PinTlsPinSet *self,
               const char   *path,
               const char   *contents,
               gsize         length,
               GError      **error)
{
  g_auto(GStrv) lines = NULL;
  guint i;

  if (memchr (contents, '\0', length) != NULL
      || !g_utf8_validate (contents, length, NULL))
    {
      g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_FILE,
                   "“%s” is neither a certificate nor a list of pins: it "
                   "holds binary data", path);
      return FALSE;
    }

  lines = g_strsplit (contents, "\n", -1);
  for (i = 0; lines[i] != NULL; i++)
    {
      char *comment = strchr (lines[i], '#');
      g_autoptr(GError) local_error = NULL;

      if (comment != NULL)
        *comment = '\0';
      if (*g_strstrip (lines[i]) == '\0')
        continue;

      if (!add_pins_from_text (self, lines[i], &local_error))
        {
          g_set_error (error, PIN_TLS_ERROR, local_error->code, "%s:%u: %s",
                       path, i + 1, local_error->message);
          return FALSE;
        }
    }

  return TRUE;
}

/**
 * pin_tls_pin_set_new_from_file:
 * @path: (type filename): a file of pins or certificates
 * @error: return location for a #GError
 *
 * Creates a pin set from a file, which holds either
 *
 * - one or more PEM certificates, or one DER certificate: each becomes a
 *   certificate pin, as rustls-pin pins certificates. Text around PEM
 *   blocks is ignored, but a pin there is an error: pins and certificates
 *   go in separate files; or
 * - pins, one or more a line in any syntax [ctor@PinTls.PinSet.new]
 *   accepts. Blank lines and everything after a `#` are ignored.
 *
 * The error is %PIN_TLS_ERROR_INVALID_FILE if the file cannot be read or
 * holds neither, %PIN_TLS_ERROR_INVALID_PIN (with the file name and line
 * number) for a bad pin, and %PIN_TLS_ERROR_EMPTY_PIN_SET if the file holds
 * no pin at all.
 *
 * Returns: (transfer full): a new pin set, or %NULL on error
 */
PinTlsPinSet *
pin_tls_pin_set_new_from_file (const char *path,
                               GError    **error)
{
  g_autoptr(PinTlsPinSet) self = NULL;
  g_autoptr(GError) read_error = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *source = NULL;
  gnutls_datum_t datum;
  gsize length;
  gboolean added;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_get_contents (path, &contents, &length, &read_error))
    {
      g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_FILE,
                   "Cannot read pins: %s", read_error->message);
      return NULL;
    }

  self = pin_set_new_empty ();
  datum.data = (guchar *) contents;
  datum.size = length;

  /* A DER certificate starts with 0x30, which is also '0', the first digit
   * of many fingerprints; its length bytes make it invalid UTF-8. */
  if (strstr (contents, "-----BEGIN ") != NULL)
    added = check_text_around_pem (path, contents, error)
            && add_pem_certificates (self, path, &datum, error);
  else if (length > 0 && (guchar) contents[0] == 0x30
           && !g_utf8_validate (contents, length, NULL))
    added = add_der_certificate (self, path, &datum, error);
  else
    added = add_pin_lines (self, path, contents, length, error);

  if (!added)
    return NULL;

  source = g_strdup_printf ("“%s”", path);
  return finish_set (g_steal_pointer (&self), source, error);
}

/**
 * pin_tls_pin_set_new_from_certificates:
 * @certificates: (array length=n_certificates): certificates to pin
 * @n_certificates: the number of certificates
 * @error: return location for a #GError
 *
 * Creates a pin set of certificate pins: the connection accepts a server
 * that presents one of exactly these certificates. Only each certificate
 * itself is pinned, not its issuers.
 *
 * The error is %PIN_TLS_ERROR_EMPTY_PIN_SET if @n_certificates is 0 and
 * %PIN_TLS_ERROR_INVALID_CERTIFICATE if a certificate has no DER data.
 *
 * Returns: (transfer full): a new pin set, or %NULL on error
 */
PinTlsPinSet *
pin_tls_pin_set_new_from_certificates (GTlsCertificate *const *certificates,
                                       guint                   n_certificates,
                                       GError                **error)
{
  g_autoptr(PinTlsPinSet) self = NULL;
  guint i;

  g_return_val_if_fail (certificates != NULL || n_certificates == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = pin_set_new_empty ();
  for (i = 0; i < n_certificates; i++)
    {
      g_autoptr(GByteArray) der = NULL;
      gnutls_datum_t datum;

      g_return_val_if_fail (G_IS_TLS_CERTIFICATE (certificates[i]), NULL);

      g_object_get (certificates[i], "certificate", &der, NULL);
      if (der == NULL || der->len == 0)
        {
          g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_CERTIFICATE,
                       "Certificate %u has no DER data to pin", i + 1);
          return NULL;
        }

      datum.data = der->data;
      datum.size = der->len;
      add_certificate_pin (self, &datum);
    }

  return finish_set (g_steal_pointer (&self), "The certificate list", error);
}

/**
 * pin_tls_pin_set_union:
 * @set: a pin set
 * @other: another pin set
 *
 * Creates the set of pins in either set, the way a client release adds the
 * next certificate to the pins of the current one before the server moves
 * to it.
 *
 * Returns: (transfer full): a new pin set
 */
PinTlsPinSet *
pin_tls_pin_set_union (PinTlsPinSet *set,
                       PinTlsPinSet *other)
{
  PinTlsPinSet *self;
  guint i;

  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (set), NULL);
  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (other), NULL);

  self = pin_set_new_empty ();
  for (i = 0; i < set->pins->len; i++)
    add_pin (self, &g_array_index (set->pins, PinTlsPin, i));
  for (i = 0; i < other->pins->len; i++)
    add_pin (self, &g_array_index (other->pins, PinTlsPin, i));

  /* Empty only if both sets were made with g_object_new(). */
  return freeze_set (self);
}

/**
 * pin_tls_pin_set_get_size:
 * @set: a pin set
 *
 * Counts the pins of @set. Pins given twice, in the same or in different
 * syntaxes, count once.
 *
 * Returns: the number of distinct pins in @set, at least 1 for a set made
 *   by one of the constructors
 */
guint
pin_tls_pin_set_get_size (PinTlsPinSet *set)
{
  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (set), 0);

  return set->pins->len;
}

static char *
format_pin (const PinTlsPin *pin)
{
  GString *hex;
  guint i;

  if (pin->kind == PIN_TLS_PIN_KIND_SPKI)
    return _pin_tls_format_spki_pin (pin->digest);

  hex = g_string_sized_new (PIN_TLS_DIGEST_SIZE * 2);
  for (i = 0; i < PIN_TLS_DIGEST_SIZE; i++)
    g_string_append_printf (hex, "%02x", pin->digest[i]);

  return g_string_free (hex, FALSE);
}

/**
 * pin_tls_pin_set_to_strings:
 * @set: a pin set
 *
 * Prints every pin of @set in its canonical form, in the order the pins
 * were first given: `sha256/BASE64` for public-key pins and 64 lower-case
 * hex digits for certificate pins. [ctor@PinTls.PinSet.new] accepts these
 * strings back.
 *
 * Returns: (transfer full) (array zero-terminated=1): the pins
 */
char **
pin_tls_pin_set_to_strings (PinTlsPinSet *set)
{
  GStrvBuilder *builder;
  char **strings;
  guint i;

  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (set), NULL);

  builder = g_strv_builder_new ();
  for (i = 0; i < set->pins->len; i++)
    {
      g_autofree char *text = format_pin (&g_array_index (set->pins, PinTlsPin, i));

      g_strv_builder_add (builder, text);
    }

  strings = g_strv_builder_end (builder);
  g_strv_builder_unref (builder);

  return strings;
}

/**
 * pin_tls_pin_set_equal:
 * @set: a pin set
 * @other: another pin set
 *
 * Compares the decoded pins of two sets, whatever syntax and order they
 * were given in.
 *
 * Returns: %TRUE if both sets hold exactly the same pins
 */
gboolean
pin_tls_pin_set_equal (PinTlsPinSet *set,
                       PinTlsPinSet *other)
{
  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (set), FALSE);
  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (other), FALSE);

  return memcmp (set->set_digest, other->set_digest, PIN_TLS_DIGEST_SIZE) == 0;
}

static gboolean
import_der (gnutls_x509_crt_t *cert,
            GBytes            *der,
            GError           **error)
{
  gnutls_datum_t datum;
  gsize size;
  int ret;

  datum.data = (guchar *) g_bytes_get_data (der, &size);
  datum.size = size;

  gnutls_x509_crt_init (cert);
  ret = gnutls_x509_crt_import (*cert, &datum, GNUTLS_X509_FMT_DER);
  if (ret < 0)
    {
      g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_CERTIFICATE,
                   "Not a valid DER certificate: %s", gnutls_strerror (ret));
      g_clear_pointer (cert, gnutls_x509_crt_deinit);
      return FALSE;
    }

  return TRUE;
}

/**
 * pin_tls_pin_set_matches_certificate:
 * @set: a pin set
 * @certificate_der: a DER certificate
 * @error: return location for a #GError
 *
 * Checks whether @set pins this certificate, by its public key or as a
 * whole. This looks at the certificate alone: during a handshake pintls
 * also decides which of the server's certificates may match at all.
 *
 * The error is %PIN_TLS_ERROR_INVALID_CERTIFICATE if @certificate_der is
 * not a certificate.
 *
 * Returns: %TRUE if a pin of @set matches; %FALSE if none does, or on error
 */
gboolean
pin_tls_pin_set_matches_certificate (PinTlsPinSet *set,
                                     GBytes       *certificate_der,
                                     GError      **error)
{
  gnutls_x509_crt_t cert;
  guint8 digest[PIN_TLS_DIGEST_SIZE];
  gsize size;
  const guint8 *data;
  gboolean matched;

  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (set), FALSE);
  g_return_val_if_fail (certificate_der != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!import_der (&cert, certificate_der, error))
    return FALSE;

  matched = _pin_tls_spki_digest (cert, digest)
            && _pin_tls_pin_set_contains (set, PIN_TLS_PIN_KIND_SPKI, digest);
  gnutls_x509_crt_deinit (cert);

  data = g_bytes_get_data (certificate_der, &size);
  gnutls_hash_fast (GNUTLS_DIG_SHA256, data, size, digest);

  return matched
         || _pin_tls_pin_set_contains (set, PIN_TLS_PIN_KIND_CERTIFICATE,
                                       digest);
}

/**
 * pin_tls_spki_pin_for_der:
 * @certificate_der: a DER certificate
 * @error: return location for a #GError
 *
 * Computes the public-key pin of a certificate: the SHA-256 digest of its
 * DER SubjectPublicKeyInfo, written `sha256/BASE64`. It is the value
 * `certtool -i` prints after `pin-sha256:`, and what
 * `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der |
 * openssl dgst -sha256 -binary | base64` prints.
 *
 * The error is %PIN_TLS_ERROR_INVALID_CERTIFICATE if @certificate_der is
 * not a certificate.
 *
 * Returns: (transfer full): the pin, or %NULL on error
 */
char *
pin_tls_spki_pin_for_der (GBytes  *certificate_der,
                          GError **error)
{
  gnutls_x509_crt_t cert;
  guint8 digest[PIN_TLS_DIGEST_SIZE];
  gboolean hashed;

  g_return_val_if_fail (certificate_der != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!import_der (&cert, certificate_der, error))
    return NULL;

  hashed = _pin_tls_spki_digest (cert, digest);
  gnutls_x509_crt_deinit (cert);

  if (!hashed)
    {
      g_set_error_literal (error, PIN_TLS_ERROR,
                           PIN_TLS_ERROR_INVALID_CERTIFICATE,
                           "The certificate's public key cannot be read");
      return NULL;
    }

  return _pin_tls_format_spki_pin (digest);
}

/**
 * pin_tls_spki_pin_for_certificate:
 * @certificate: a certificate
 * @error: return location for a #GError
 *
 * Computes the public-key pin of @certificate, as
 * [func@PinTls.spki_pin_for_der] does.
 *
 * The error is %PIN_TLS_ERROR_INVALID_CERTIFICATE if @certificate has no
 * DER data or its public key cannot be read.
 *
 * Returns: (transfer full): the pin, or %NULL on error
 */
char *
pin_tls_spki_pin_for_certificate (GTlsCertificate *certificate,
                                  GError         **error)
{
  g_autoptr(GByteArray) der = NULL;
  g_autoptr(GBytes) bytes = NULL;

  g_return_val_if_fail (G_IS_TLS_CERTIFICATE (certificate), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_object_get (certificate, "certificate", &der, NULL);
  if (der == NULL)
    {
      g_set_error_literal (error, PIN_TLS_ERROR,
                           PIN_TLS_ERROR_INVALID_CERTIFICATE,
                           "The certificate has no DER data");
      return NULL;
    }

  bytes = g_bytes_new (der->data, der->len);
  return pin_tls_spki_pin_for_der (bytes, error);
}

gboolean
_pin_tls_pin_set_contains (PinTlsPinSet *set,
                           PinTlsPinKind kind,
                           const guint8 *digest)
{
  PinTlsPin key;

  key.kind = kind;
  memcpy (key.digest, digest, PIN_TLS_DIGEST_SIZE);

  return g_hash_table_contains (set->lookup, &key);
}

/* Whether any pin is a whole-certificate one. Known from construction:
 * every verdict asks, so it must not grow with the number of pins. */
gboolean
_pin_tls_pin_set_has_certificate_pins (PinTlsPinSet *set)
{
  return set->n_certificate_pins > 0;
}

const guint8 *
_pin_tls_pin_set_get_digest (PinTlsPinSet *set)
{
  return set->set_digest;
}

/* The configured pins for an error message, bounded in length. */
char *
_pin_tls_pin_set_describe (PinTlsPinSet *set)
{
  const guint shown = MIN (set->pins->len, 8);
  GString *text = g_string_new (NULL);
  guint i;

  for (i = 0; i < shown; i++)
    {
      g_autofree char *pin = format_pin (&g_array_index (set->pins, PinTlsPin, i));

      g_string_append_printf (text, "%s%s", i > 0 ? ", " : "", pin);
    }

  if (shown < set->pins->len)
    g_string_append_printf (text, " and %u more", set->pins->len - shown);

  return g_string_free (text, FALSE);
}

gboolean
_pin_tls_spki_digest (gnutls_x509_crt_t crt,
                      guint8           *digest)
{
  size_t size = PIN_TLS_DIGEST_SIZE;

  /* GnuTLS hashes the DER SubjectPublicKeyInfo for this key ID. */
  return gnutls_x509_crt_get_key_id (crt, GNUTLS_KEYID_USE_SHA256, digest,
                                     &size) == 0
         && size == PIN_TLS_DIGEST_SIZE;
}

char *
_pin_tls_format_spki_pin (const guint8 *digest)
{
  g_autofree char *encoded = g_base64_encode (digest, PIN_TLS_DIGEST_SIZE);

  return g_strconcat ("sha256/", encoded, NULL);
}
