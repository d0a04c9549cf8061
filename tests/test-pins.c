/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Pin parsing, formatting and hashing; pin sets from strings, files and
 * certificates; server name normalisation. Pins of the test certificates
 * are computed with certtool and OpenSSL, never with pintls itself. */

#include "test-utils.h"

#include <glib/gstdio.h>
#include <string.h>

/* Arbitrary well-formed pins, for tests that need no certificate. */
#define BASE64_A "HNH8eI1jUng9wwn7GOdKO2jeK1FN90UHShyaNUegyqM="
#define BASE64_B "7DFoL95WGReVL/eKeore/9D+vDct0mhxkWxGxjA4G0U="
#define BASE64_B_URL_SAFE "7DFoL95WGReVL_eKeore_9D-vDct0mhxkWxGxjA4G0U"
#define BASE64_SLASH "/LnyW2IT6ffUbT6xD2l1KNEinoz0fnFAnf6fYnfGs9Q="
#define PIN_A "sha256/" BASE64_A
#define PIN_B "sha256/" BASE64_B
#define PIN_B_URL_SAFE "sha256/" BASE64_B_URL_SAFE
#define PIN_SLASH "sha256/" BASE64_SLASH
#define FINGERPRINT_ZERO \
  "0f72a328ee492fdfac04b3d26be46541930059b336f55ffc9ba8b7bbffffe3bf"

#define LARGE_SET_SIZE 100000

/* Runs @command_line and returns its standard output, stripped. */
static char *
run_command (const char *command_line)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *output = NULL;
  int wait_status;

  g_spawn_command_line_sync (command_line, &output, NULL, &wait_status,
                             &error);
  g_assert_no_error (error);

  g_spawn_check_wait_status (wait_status, &error);
  g_assert_no_error (error);

  return g_strdup (g_strstrip (output));
}

/* The public-key pin of a certificate file as the usual OpenSSL pipeline
 * computes it. */
static char *
openssl_pin (const char *name)
{
  g_autofree char *path = test_data_path (name);
  g_autofree char *quoted = g_shell_quote (path);
  g_autofree char *pipeline = NULL;
  g_autofree char *quoted_pipeline = NULL;
  g_autofree char *command = NULL;
  g_autofree char *base64 = NULL;

  pipeline = g_strdup_printf ("openssl x509 -in %s -pubkey -noout"
                              " | openssl pkey -pubin -outform der"
                              " | openssl dgst -sha256 -binary | base64",
                              quoted);
  quoted_pipeline = g_shell_quote (pipeline);
  command = g_strdup_printf ("sh -c %s", quoted_pipeline);
  base64 = run_command (command);

  return g_strconcat ("sha256/", base64, NULL);
}

/* Whether @program is installed; if not, the test is skipped. */
static gboolean
require_program (const char *program)
{
  g_autofree char *path = g_find_program_in_path (program);
  g_autofree char *reason = NULL;

  if (path != NULL)
    return TRUE;

  reason = g_strdup_printf ("%s is not installed", program);
  g_test_skip (reason);
  return FALSE;
}

static GBytes *
load_first_der (const char *name)
{
  g_autoptr(GPtrArray) chain = test_load_der_chain (name);

  g_assert_cmpuint (chain->len, >, 0);

  return g_bytes_ref (g_ptr_array_index (chain, 0));
}

/* SHA-256 fingerprint of a DER certificate, computed by GLib. */
static char *
fingerprint (GBytes *der)
{
  return g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, der);
}

static PinTlsPinSet *
pin_set_new_checked (const char *const *pins)
{
  g_autoptr(GError) error = NULL;
  PinTlsPinSet *set = pin_tls_pin_set_new (pins, &error);

  g_assert_no_error (error);
  g_assert_nonnull (set);

  return set;
}

static PinTlsPinSet *
pin_set_new_from_file_checked (const char *path)
{
  g_autoptr(GError) error = NULL;
  PinTlsPinSet *set = pin_tls_pin_set_new_from_file (path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (set);

  return set;
}

/* Checks that @set prints as @expected and that its printed form parses
 * back to the same set. */
static void
assert_prints_as (PinTlsPinSet      *set,
                  const char *const *expected)
{
  g_auto(GStrv) printed = pin_tls_pin_set_to_strings (set);
  g_autoptr(PinTlsPinSet) reparsed = NULL;

  g_assert_cmpstrv (printed, expected);

  reparsed = pin_set_new_checked ((const char *const *) printed);
  g_assert_true (pin_tls_pin_set_equal (reparsed, set));
}

static void
assert_pin_error (GError     *error,
                  int         code,
                  const char *text)
{
  g_assert_error (error, PIN_TLS_ERROR, code);
  if (strstr (error->message, text) == NULL)
    g_error ("“%s” does not mention “%s”", error->message, text);
}

/* Spellings of one pin (A, leaf1's) or two (A and B, rsa2048's). */
typedef enum
{
  FORM_PADDED,
  FORM_UNPADDED,
  FORM_URL_SAFE,
  FORM_URL_SAFE_UNPADDED,
} Base64Form;

typedef struct
{
  const char *path;
  const char *spelling; /* "@A@" and "@B@" stand for the pins' base64 */
  Base64Form form;
} SpellingCase;

static const SpellingCase spelling_cases[] = {
  { "/pintls/pins/parse-okhttp", "sha256/@A@", FORM_PADDED },
  { "/pintls/pins/parse-curl", "sha256//@A@", FORM_PADDED },
  { "/pintls/pins/parse-hpkp", "pin-sha256=\"@A@\"", FORM_PADDED },
  { "/pintls/pins/parse-certtool", "pin-sha256:@A@", FORM_PADDED },
  { "/pintls/pins/parse-unpadded", "sha256/@A@", FORM_UNPADDED },
  { "/pintls/pins/parse-curl-unpadded", "sha256//@A@", FORM_UNPADDED },
  { "/pintls/pins/parse-hpkp-unpadded", "pin-sha256=\"@A@\"", FORM_UNPADDED },
  { "/pintls/pins/parse-url-safe", "sha256/@A@", FORM_URL_SAFE },
  { "/pintls/pins/parse-url-safe-unpadded", "sha256/@A@",
    FORM_URL_SAFE_UNPADDED },
  { "/pintls/pins/parse-surrounding-space", " \t sha256/@A@ \r\n",
    FORM_PADDED },
  { "/pintls/pins/parse-prefix-case", "SHA256/@A@", FORM_PADDED },
  { "/pintls/pins/parse-hpkp-prefix-case", "Pin-Sha256=\"@A@\"",
    FORM_PADDED },
  { "/pintls/pins/parse-certtool-prefix-case", "PIN-SHA256:@A@",
    FORM_PADDED },
  { "/pintls/pins/parse-duplicate", "sha256/@A@; sha256//@A@", FORM_PADDED },
  { "/pintls/pins/parse-semicolons", "sha256/@A@;sha256/@B@", FORM_PADDED },
  { "/pintls/pins/parse-commas", "sha256/@A@, pin-sha256:@B@", FORM_PADDED },
  { "/pintls/pins/parse-curl-list", "sha256//@A@;sha256//@B@", FORM_PADDED },
  { "/pintls/pins/parse-mixed-list", " pin-sha256=\"@A@\" ,\tsha256//@B@\n",
    FORM_UNPADDED },
  { "/pintls/pins/parse-empty-entries", ";sha256/@A@;;, ,sha256/@B@;",
    FORM_URL_SAFE },
};

static char *
respell_base64 (const char *base64,
                Base64Form  form)
{
  GString *text = g_string_new (base64);

  if (form == FORM_UNPADDED || form == FORM_URL_SAFE_UNPADDED)
    {
      while (text->len > 0 && text->str[text->len - 1] == '=')
        g_string_truncate (text, text->len - 1);
    }

  if (form == FORM_URL_SAFE || form == FORM_URL_SAFE_UNPADDED)
    {
      g_string_replace (text, "+", "-", 0);
      g_string_replace (text, "/", "_", 0);
    }

  return g_string_free (text, FALSE);
}

static void
test_parse_spelling (gconstpointer data)
{
  const SpellingCase *spelling = data;
  g_autofree char *pin_a = NULL;
  g_autofree char *pin_b = NULL;
  g_autofree char *base64_a = NULL;
  g_autofree char *base64_b = NULL;
  g_autoptr(GString) text = g_string_new (spelling->spelling);
  g_autoptr(PinTlsPinSet) set = NULL;
  g_autoptr(PinTlsPinSet) expected = NULL;
  const char *expected_strings[3] = { NULL, NULL, NULL };
  const char *pins[2] = { NULL, NULL };

  if (!require_program ("certtool"))
    return;

  pin_a = test_certtool_pin ("leaf1.pem");
  pin_b = test_certtool_pin ("rsa2048.pem");
  base64_a = respell_base64 (pin_a + strlen ("sha256/"), spelling->form);
  base64_b = respell_base64 (pin_b + strlen ("sha256/"), spelling->form);

  expected_strings[0] = pin_a;
  if (strstr (spelling->spelling, "@B@") != NULL)
    expected_strings[1] = pin_b;
  expected = pin_set_new_checked (expected_strings);

  g_string_replace (text, "@A@", base64_a, 0);
  g_string_replace (text, "@B@", base64_b, 0);
  pins[0] = text->str;
  set = pin_set_new_checked (pins);

  g_assert_true (pin_tls_pin_set_equal (set, expected));
  g_assert_cmpuint (pin_tls_pin_set_get_size (set), ==,
                    pin_tls_pin_set_get_size (expected));
  assert_prints_as (set, expected_strings);
}

/* The URL-safe alphabet, with a digest whose base64 surely holds both
 * characters that differ between the alphabets. */
static void
test_parse_url_safe_alphabet (void)
{
  const char *standard[] = { PIN_B, NULL };
  const char *url_safe[] = { PIN_B_URL_SAFE, NULL };
  g_autoptr(PinTlsPinSet) expected = pin_set_new_checked (standard);
  g_autoptr(PinTlsPinSet) set = pin_set_new_checked (url_safe);

  g_assert_true (pin_tls_pin_set_equal (set, expected));
  assert_prints_as (set, standard);
}

/* A digest whose base64 starts with '/' reads "sha256//..." in OkHttp's
 * spelling, and "sha256///..." in curl's. */
static void
test_parse_leading_slash (void)
{
  const char *okhttp[] = { PIN_SLASH, NULL };
  const char *certtool[] = { "pin-sha256:" BASE64_SLASH, NULL };
  const char *curl[] = { "sha256//" BASE64_SLASH, NULL };
  g_autoptr(PinTlsPinSet) expected = pin_set_new_checked (certtool);
  g_autoptr(PinTlsPinSet) set = pin_set_new_checked (okhttp);
  g_autoptr(PinTlsPinSet) curl_set = pin_set_new_checked (curl);

  g_assert_true (pin_tls_pin_set_equal (set, expected));
  g_assert_true (pin_tls_pin_set_equal (curl_set, expected));
  assert_prints_as (set, okhttp);
}

/* Spellings of leaf1's certificate fingerprint. */
typedef enum
{
  HEX_LOWER,
  HEX_UPPER_COLONS,
  HEX_SPACES,
} HexForm;

static char *
respell_hex (const char *hex,
             HexForm     form)
{
  GString *text = g_string_new (NULL);
  gsize i;

  for (i = 0; hex[i] != '\0'; i += 2)
    {
      if (i > 0 && form == HEX_UPPER_COLONS)
        g_string_append_c (text, ':');
      else if (i > 0 && form == HEX_SPACES)
        g_string_append_c (text, ' ');

      g_string_append_len (text, hex + i, 2);
    }

  if (form == HEX_UPPER_COLONS)
    g_string_ascii_up (text);

  return g_string_free (text, FALSE);
}

static void
test_parse_fingerprint (gconstpointer data)
{
  HexForm form = GPOINTER_TO_INT (data);
  g_autoptr(GBytes) der = load_first_der ("leaf1.pem");
  g_autofree char *hex = fingerprint (der);
  g_autofree char *spelled = respell_hex (hex, form);
  g_autofree char *pem_path = test_data_path ("leaf1.pem");
  g_autofree char *der_path = test_data_path ("leaf1.der");
  g_autoptr(PinTlsPinSet) set = NULL;
  g_autoptr(PinTlsPinSet) from_pem = NULL;
  g_autoptr(PinTlsPinSet) from_der = NULL;
  const char *pins[] = { spelled, NULL };
  const char *canonical[] = { hex, NULL };

  set = pin_set_new_checked (pins);
  from_pem = pin_set_new_from_file_checked (pem_path);
  from_der = pin_set_new_from_file_checked (der_path);

  g_assert_cmpuint (pin_tls_pin_set_get_size (set), ==, 1);
  g_assert_true (pin_tls_pin_set_equal (set, from_pem));
  g_assert_true (pin_tls_pin_set_equal (set, from_der));
  assert_prints_as (set, canonical);
}

typedef struct
{
  const char *path;
  const char *text;
  const char *offending; /* what the message must quote; NULL: @text */
  const char *mention;   /* what else it must say, or NULL */
} InvalidCase;

static const InvalidCase invalid_cases[] = {
  { "/pintls/pins/invalid/digest-31-bytes",
    "sha256/vT45ttUrzFblar/DgQZF6wGgEXwZA4e40cCXEDrsWw==", NULL, "31" },
  { "/pintls/pins/invalid/digest-33-bytes",
    "sha256/1WdVuMc9m0TQr+WEzLIBvCVlRVCGPqCK55/iYietCsfV", NULL, "33" },
  { "/pintls/pins/invalid/base64-bang",
    "sha256/HNH8eI1jUng9wwn7GOdKO2jeK1FN90UHShya!UegyqM=", NULL, NULL },
  { "/pintls/pins/invalid/base64-mixed-alphabets",
    "sha256/7DFoL95WGReVL/eKeore_9D+vDct0mhxkWxGxjA4G0U=", NULL, NULL },
  { "/pintls/pins/invalid/base64-excess-padding",
    "sha256/HNH8eI1jUng9wwn7GOdKO2jeK1FN90UHShyaNUegyqM==", NULL, NULL },
  { "/pintls/pins/invalid/base64-inner-space",
    "sha256/HNH8eI1jUng9wwn7GOdKO2je K1FN90UHShyaNUegyqM=", NULL, NULL },
  { "/pintls/pins/invalid/hex-g",
    "1cd1fc788d6352783dc309fb18e74a3b68de2b514df745074a1c9a3547a0caag",
    NULL, NULL },
  { "/pintls/pins/invalid/hex-odd-length",
    "1cd1fc788d6352783dc309fb18e74a3b68de2b514df745074a1c9a3547a0caa",
    NULL, NULL },
  { "/pintls/pins/invalid/empty-okhttp", "sha256/", NULL, NULL },
  { "/pintls/pins/invalid/empty-curl", "sha256//", NULL, NULL },
  { "/pintls/pins/invalid/empty-hpkp", "pin-sha256=\"\"", NULL, NULL },
  { "/pintls/pins/invalid/hpkp-unquoted",
    "pin-sha256=HNH8eI1jUng9wwn7GOdKO2jeK1FN90UHShyaNUegyqM=", NULL, NULL },
  { "/pintls/pins/invalid/md5-prefix", "md5/hT3kQRXjMwtaBBLxLO2Seg==",
    NULL, NULL },
  { "/pintls/pins/invalid/sha1-prefix", "sha1/imi+ySyL3mBiOanxs0G3/N7HKOg=",
    NULL, "SHA-1" },
  { "/pintls/pins/invalid/sha1-digest", "sha256/imi+ySyL3mBiOanxs0G3/N7HKOg=",
    NULL, "SHA-1" },
  { "/pintls/pins/invalid/md5-hex", "853de44115e3330b5a0412f12ced927a",
    NULL, "MD5" },
  { "/pintls/pins/invalid/sha1-hex", "8a68bec92c8bde606239a9f1b341b7fcdec728e8",
    NULL, "SHA-1" },
  { "/pintls/pins/invalid/empty-input-digest",
    "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", NULL,
    "empty input" },
  { "/pintls/pins/invalid/empty-input-digest-hex",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", NULL,
    "empty input" },
  { "/pintls/pins/invalid/bare-base64",
    "HNH8eI1jUng9wwn7GOdKO2jeK1FN90UHShyaNUegyqM=", NULL, NULL },
  { "/pintls/pins/invalid/url", "https://host.test/", NULL, NULL },
  { "/pintls/pins/invalid/host-port", "host.test:443", NULL, NULL },
  { "/pintls/pins/invalid/unknown-prefix",
    "sha512/HNH8eI1jUng9wwn7GOdKO2jeK1FN90UHShyaNUegyqM=", NULL, NULL },
  { "/pintls/pins/invalid/only-separators", " ;, ; ", NULL, NULL },
  { "/pintls/pins/invalid/empty-string", "", NULL, NULL },
  { "/pintls/pins/invalid/bad-after-good", PIN_A "; sha256/x!", "sha256/x!",
    NULL },
};

static void
test_parse_invalid (gconstpointer data)
{
  const InvalidCase *invalid = data;
  const char *pins[] = { PIN_B, invalid->text, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(PinTlsPinSet) set = NULL;

  set = pin_tls_pin_set_new (pins, &error);

  g_assert_null (set);
  assert_pin_error (error, PIN_TLS_ERROR_INVALID_PIN,
                    invalid->offending ? invalid->offending : invalid->text);
  if (invalid->mention != NULL)
    assert_pin_error (error, PIN_TLS_ERROR_INVALID_PIN, invalid->mention);
}

static void
test_parse_empty_list (void)
{
  const char *pins[] = { NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(PinTlsPinSet) set = NULL;

  set = pin_tls_pin_set_new (pins, &error);

  g_assert_null (set);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_EMPTY_PIN_SET);
}

/* A temporary directory for pin files, removed with what it holds. */
typedef struct
{
  char *dir;
} TmpDir;

static void
tmp_dir_setup (TmpDir       *fixture,
               gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture->dir = g_dir_make_tmp ("pintls-pins-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
tmp_dir_teardown (TmpDir       *fixture,
                  gconstpointer data)
{
  g_autoptr(GDir) dir = g_dir_open (fixture->dir, 0, NULL);
  const char *name;

  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (fixture->dir, name, NULL);

      g_assert_cmpint (g_remove (path), ==, 0);
    }

  g_assert_cmpint (g_rmdir (fixture->dir), ==, 0);
  g_free (fixture->dir);
}

static char *
write_tmp_file (TmpDir     *fixture,
                const char *name,
                const char *contents,
                gssize      length)
{
  char *path = g_build_filename (fixture->dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, length, &error);
  g_assert_no_error (error);

  return path;
}

static void
test_file_pin_lines (TmpDir       *fixture,
                     gconstpointer data)
{
  const char contents[] =
    "# Pins for host.test\r\n"
    "\r\n"
    "   " PIN_A "   # current key\r\n"
    "\tpin-sha256=\"" BASE64_B_URL_SAFE "\" ;" PIN_SLASH ",\r\n"
    "# fingerprint of the next certificate:\r\n"
    FINGERPRINT_ZERO "\r\n";
  const char *expected_strings[] = {
    PIN_A, PIN_B, PIN_SLASH, FINGERPRINT_ZERO, NULL
  };
  g_autofree char *path = write_tmp_file (fixture, "pins.txt", contents, -1);
  g_autoptr(PinTlsPinSet) expected = pin_set_new_checked (expected_strings);
  g_autoptr(PinTlsPinSet) set = pin_set_new_from_file_checked (path);

  g_assert_true (pin_tls_pin_set_equal (set, expected));
  assert_prints_as (set, expected_strings);
}

/* A pin file may start with a fingerprint whose first digit, '0', is also
 * the first byte of every DER certificate. */
static void
test_file_fingerprint_first (TmpDir       *fixture,
                             gconstpointer data)
{
  const char *expected_strings[] = { FINGERPRINT_ZERO, PIN_A, NULL };
  g_autofree char *path = NULL;
  g_autoptr(PinTlsPinSet) expected = pin_set_new_checked (expected_strings);
  g_autoptr(PinTlsPinSet) set = NULL;

  path = write_tmp_file (fixture, "pins.txt",
                         FINGERPRINT_ZERO "\n" PIN_A "\n", -1);
  set = pin_set_new_from_file_checked (path);

  g_assert_true (pin_tls_pin_set_equal (set, expected));
}

typedef struct
{
  const char *path;
  const char *contents; /* NULL: the file does not exist */
  gssize length;
  int code;
  guint line;           /* the line an INVALID_PIN message names */
} BadFileCase;

static const BadFileCase bad_file_cases[] = {
  { "/pintls/pins/file/empty", "", 0, PIN_TLS_ERROR_EMPTY_PIN_SET, 0 },
  { "/pintls/pins/file/comments-only",
    "# pins for host.test\n\n   # none yet\r\n", -1,
    PIN_TLS_ERROR_EMPTY_PIN_SET, 0 },
  { "/pintls/pins/file/missing", NULL, 0, PIN_TLS_ERROR_INVALID_FILE, 0 },
  { "/pintls/pins/file/binary", "\x01\x02\xff\xfe\0garbage", 12,
    PIN_TLS_ERROR_INVALID_FILE, 0 },
  { "/pintls/pins/file/binary-sequence", "\x30\x82\x01\x00\xff\0\x13", 7,
    PIN_TLS_ERROR_INVALID_FILE, 0 },
  { "/pintls/pins/file/broken-pem",
    "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
    "-----END CERTIFICATE-----\n", -1, PIN_TLS_ERROR_INVALID_FILE, 0 },
  { "/pintls/pins/file/pem-without-certificate",
    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", -1,
    PIN_TLS_ERROR_INVALID_FILE, 0 },
  { "/pintls/pins/file/bad-pin-line",
    PIN_A "\n# a comment\n\nsha256/not-a-pin!\n" PIN_B "\n", -1,
    PIN_TLS_ERROR_INVALID_PIN, 4 },
  { "/pintls/pins/file/bad-pin-line-crlf",
    PIN_A "\r\n\r\nmd5/hT3kQRXjMwtaBBLxLO2Seg==\r\n", -1,
    PIN_TLS_ERROR_INVALID_PIN, 3 },
  { "/pintls/pins/file/bad-second-pin-on-line",
    "# first line\n" PIN_A "; sha1/imi+ySyL3mBiOanxs0G3/N7HKOg=\n", -1,
    PIN_TLS_ERROR_INVALID_PIN, 2 },
};

static void
test_file_bad (TmpDir       *fixture,
               gconstpointer data)
{
  const BadFileCase *bad = data;
  g_autofree char *path = NULL;
  g_autofree char *location = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(PinTlsPinSet) set = NULL;

  if (bad->contents != NULL)
    path = write_tmp_file (fixture, "pins.txt", bad->contents, bad->length);
  else
    path = g_build_filename (fixture->dir, "missing.txt", NULL);

  set = pin_tls_pin_set_new_from_file (path, &error);

  g_assert_null (set);
  assert_pin_error (error, bad->code, path);
  if (bad->line == 0)
    return;

  location = g_strdup_printf ("%s:%u:", path, bad->line);
  assert_pin_error (error, bad->code, location);
}

/* The certificate pins of every certificate in a file, by fingerprint. */
static PinTlsPinSet *
fingerprints_of (const char *name)
{
  g_autoptr(GPtrArray) chain = test_load_der_chain (name);
  g_autoptr(GPtrArray) hex = g_ptr_array_new_with_free_func (g_free);
  guint i;

  for (i = 0; i < chain->len; i++)
    g_ptr_array_add (hex, fingerprint (g_ptr_array_index (chain, i)));
  g_ptr_array_add (hex, NULL);

  return pin_set_new_checked ((const char *const *) hex->pdata);
}

static void
test_file_pem_chain (void)
{
  g_autofree char *path = test_data_path ("forged-chain.pem");
  g_autoptr(PinTlsPinSet) expected = fingerprints_of ("forged-chain.pem");
  g_autoptr(PinTlsPinSet) set = pin_set_new_from_file_checked (path);

  g_assert_cmpuint (pin_tls_pin_set_get_size (set), ==, 3);
  g_assert_true (pin_tls_pin_set_equal (set, expected));
}

static void
test_file_der (void)
{
  g_autofree char *path = test_data_path ("leaf1.der");
  g_autoptr(PinTlsPinSet) expected = fingerprints_of ("leaf1.pem");
  g_autoptr(PinTlsPinSet) set = pin_set_new_from_file_checked (path);

  g_assert_cmpuint (pin_tls_pin_set_get_size (set), ==, 1);
  g_assert_true (pin_tls_pin_set_equal (set, expected));
}

/* GnuTLS skips whatever text surrounds the PEM blocks of a certificate
 * file. A pin written there must not be skipped with it. */
static void
test_file_pins_beside_certificates (TmpDir       *fixture,
                                    gconstpointer data)
{
  g_autofree char *pem_path = test_data_path ("leaf1.pem");
  g_autofree char *pem = NULL;
  struct
  {
    const char *before;
    const char *after;
    guint line;
  } cases[] = {
    { PIN_A "\n", "", 1 },
    { "", "# the next certificate\n" FINGERPRINT_ZERO "\n", 0 },
    { "# backups\n" PIN_B "; " PIN_A "\n", "", 2 },
    { "", "sha256/not-a-pin\n", 0 },
  };
  guint i;

  g_assert_true (g_file_get_contents (pem_path, &pem, NULL, NULL));

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *contents = g_strconcat (cases[i].before, pem,
                                               cases[i].after, NULL);
      g_autofree char *path = write_tmp_file (fixture, "mixed.pem", contents, -1);
      g_autoptr(PinTlsPinSet) set = NULL;
      g_autoptr(GError) error = NULL;

      set = pin_tls_pin_set_new_from_file (path, &error);

      g_assert_null (set);
      assert_pin_error (error, PIN_TLS_ERROR_INVALID_FILE, path);
      if (cases[i].line != 0)
        {
          g_autofree char *location = g_strdup_printf ("%s:%u:", path,
                                                       cases[i].line);

          assert_pin_error (error, PIN_TLS_ERROR_INVALID_FILE, location);
        }
    }
}

/* The subject lines and comments that tools write around PEM blocks are
 * not pins. */
static void
test_file_pem_with_text (TmpDir       *fixture,
                         gconstpointer data)
{
  g_autofree char *pem_path = test_data_path ("leaf1.pem");
  g_autofree char *pem = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *path = NULL;
  g_autoptr(PinTlsPinSet) expected = fingerprints_of ("leaf1.pem");
  g_autoptr(PinTlsPinSet) set = NULL;

  g_assert_true (g_file_get_contents (pem_path, &pem, NULL, NULL));
  contents = g_strconcat ("subject=CN = host.test\n",
                          "issuer=CN = Intermediate A, O = sha256/\n",
                          "# " PIN_A " is the key in service\n", pem, NULL);
  path = write_tmp_file (fixture, "leaf.pem", contents, -1);
  set = pin_set_new_from_file_checked (path);

  g_assert_true (pin_tls_pin_set_equal (set, expected));
}

static GTlsCertificate *
load_certificate (const char *name)
{
  g_autofree char *path = test_data_path (name);
  g_autoptr(GError) error = NULL;
  GTlsCertificate *certificate;

  certificate = g_tls_certificate_new_from_file (path, &error);
  g_assert_no_error (error);

  return certificate;
}

static void
test_from_certificates (void)
{
  g_autoptr(GTlsCertificate) leaf = load_certificate ("leaf1.pem");
  g_autoptr(GTlsCertificate) intermediate = load_certificate ("intA.pem");
  GTlsCertificate *certificates[] = { leaf, intermediate, leaf };
  g_autoptr(PinTlsPinSet) expected = fingerprints_of ("leaf1-chain.pem");
  g_autoptr(PinTlsPinSet) set = NULL;
  g_autoptr(GError) error = NULL;

  set = pin_tls_pin_set_new_from_certificates (certificates, 3, &error);
  g_assert_no_error (error);

  g_assert_cmpuint (pin_tls_pin_set_get_size (set), ==, 2);
  g_assert_true (pin_tls_pin_set_equal (set, expected));
}

static void
test_from_no_certificates (void)
{
  GTlsCertificate *certificates[] = { NULL };
  g_autoptr(PinTlsPinSet) set = NULL;
  g_autoptr(GError) error = NULL;

  set = pin_tls_pin_set_new_from_certificates (certificates, 0, &error);

  g_assert_null (set);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_EMPTY_PIN_SET);
}

static void
test_union (void)
{
  const char *first_pins[] = { PIN_A, PIN_B, NULL };
  const char *second_pins[] = { PIN_B_URL_SAFE, FINGERPRINT_ZERO, PIN_SLASH,
                                NULL };
  const char *all_pins[] = { PIN_A, PIN_B, FINGERPRINT_ZERO, PIN_SLASH, NULL };
  g_autoptr(PinTlsPinSet) first = pin_set_new_checked (first_pins);
  g_autoptr(PinTlsPinSet) second = pin_set_new_checked (second_pins);
  g_autoptr(PinTlsPinSet) expected = pin_set_new_checked (all_pins);
  g_autoptr(PinTlsPinSet) both = NULL;
  g_autoptr(PinTlsPinSet) itself = NULL;

  both = pin_tls_pin_set_union (first, second);
  itself = pin_tls_pin_set_union (first, first);

  g_assert_cmpuint (pin_tls_pin_set_get_size (both), ==, 4);
  g_assert_true (pin_tls_pin_set_equal (both, expected));
  g_assert_false (pin_tls_pin_set_equal (both, first));
  assert_prints_as (both, all_pins);

  g_assert_cmpuint (pin_tls_pin_set_get_size (itself), ==, 2);
  g_assert_true (pin_tls_pin_set_equal (itself, first));
}

/* Sets made with g_object_new() hold no pins; their union is still a set,
 * never NULL. */
static void
test_union_unbuilt (void)
{
  const char *pins[] = { PIN_A, NULL };
  g_autoptr(PinTlsPinSet) built = pin_set_new_checked (pins);
  g_autoptr(PinTlsPinSet) unbuilt = g_object_new (PIN_TLS_TYPE_PIN_SET, NULL);
  g_autoptr(PinTlsPinSet) other = g_object_new (PIN_TLS_TYPE_PIN_SET, NULL);
  g_autoptr(PinTlsPinSet) nothing = NULL;
  g_autoptr(PinTlsPinSet) something = NULL;

  nothing = pin_tls_pin_set_union (unbuilt, other);
  something = pin_tls_pin_set_union (unbuilt, built);

  g_assert_nonnull (nothing);
  g_assert_cmpuint (pin_tls_pin_set_get_size (nothing), ==, 0);
  g_assert_true (pin_tls_pin_set_equal (something, built));
}

/* A public-key pin and a certificate pin of the same certificate are two
 * different pins. */
static void
test_union_kinds (void)
{
  g_autofree char *path = test_data_path ("leaf1.pem");
  g_autoptr(GBytes) der = load_first_der ("leaf1.pem");
  g_autofree char *spki_pin = NULL;
  g_autoptr(PinTlsPinSet) spki = NULL;
  g_autoptr(PinTlsPinSet) certificate = NULL;
  g_autoptr(PinTlsPinSet) both = NULL;
  g_autoptr(GError) error = NULL;
  const char *pins[] = { NULL, NULL };

  spki_pin = pin_tls_spki_pin_for_der (der, &error);
  g_assert_no_error (error);
  pins[0] = spki_pin;

  spki = pin_set_new_checked (pins);
  certificate = pin_set_new_from_file_checked (path);
  both = pin_tls_pin_set_union (spki, certificate);

  g_assert_false (pin_tls_pin_set_equal (spki, certificate));
  g_assert_cmpuint (pin_tls_pin_set_get_size (both), ==, 2);
}

static void
test_size (void)
{
  const char *pins[] = {
    PIN_B ";" PIN_B_URL_SAFE,
    "pin-sha256:" BASE64_B,
    FINGERPRINT_ZERO,
    "0F:72:A3:28:EE:49:2F:DF:AC:04:B3:D2:6B:E4:65:41:"
    "93:00:59:B3:36:F5:5F:FC:9B:A8:B7:BB:FF:FF:E3:BF",
    NULL
  };
  g_autoptr(PinTlsPinSet) set = pin_set_new_checked (pins);

  g_assert_cmpuint (pin_tls_pin_set_get_size (set), ==, 2);
}

static gboolean
matches (PinTlsPinSet *set,
         const char   *name)
{
  g_autoptr(GBytes) der = load_first_der (name);
  g_autoptr(GError) error = NULL;
  gboolean matched;

  matched = pin_tls_pin_set_matches_certificate (set, der, &error);
  g_assert_no_error (error);

  return matched;
}

/* A public-key pin survives reissuing the certificate with the same key; a
 * certificate pin does not. */
static void
test_matches_certificate (void)
{
  g_autofree char *path = test_data_path ("leaf1.pem");
  g_autoptr(GTlsCertificate) leaf = load_certificate ("leaf1.pem");
  g_autoptr(PinTlsPinSet) spki = NULL;
  g_autoptr(PinTlsPinSet) certificate = NULL;
  g_autofree char *spki_pin = NULL;
  g_autoptr(GError) error = NULL;
  const char *pins[] = { NULL, NULL };

  spki_pin = pin_tls_spki_pin_for_certificate (leaf, &error);
  g_assert_no_error (error);
  pins[0] = spki_pin;
  spki = pin_set_new_checked (pins);
  certificate = pin_set_new_from_file_checked (path);

  g_assert_true (matches (spki, "leaf1.pem"));
  g_assert_true (matches (spki, "leaf1-reissued.pem"));
  g_assert_false (matches (spki, "leaf2.pem"));
  g_assert_false (matches (spki, "intA.pem"));

  g_assert_true (matches (certificate, "leaf1.pem"));
  g_assert_false (matches (certificate, "leaf1-reissued.pem"));
  g_assert_false (matches (certificate, "leaf2.pem"));
}

/* The certificate's fingerprint given as a public-key pin matches nothing:
 * the kind of digest is never guessed. */
static void
test_matches_fingerprint_as_spki (void)
{
  g_autoptr(GBytes) der = load_first_der ("leaf1.pem");
  guint8 digest[PIN_TLS_DIGEST_SIZE];
  gsize digest_size = sizeof digest;
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *base64 = NULL;
  g_autofree char *pin = NULL;
  g_autoptr(PinTlsPinSet) set = NULL;
  const char *pins[] = { NULL, NULL };

  g_checksum_update (checksum, g_bytes_get_data (der, NULL),
                     g_bytes_get_size (der));
  g_checksum_get_digest (checksum, digest, &digest_size);
  base64 = g_base64_encode (digest, digest_size);
  pin = g_strconcat ("sha256/", base64, NULL);
  pins[0] = pin;

  set = pin_set_new_checked (pins);

  g_assert_false (matches (set, "leaf1.pem"));
}

static void
test_matches_garbage (void)
{
  const char *pins[] = { PIN_A, NULL };
  g_autoptr(PinTlsPinSet) set = pin_set_new_checked (pins);
  g_autoptr(GBytes) garbage = g_bytes_new_static ("\x30\x03garbage", 9);
  g_autoptr(GError) error = NULL;

  g_assert_false (pin_tls_pin_set_matches_certificate (set, garbage, &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_CERTIFICATE);
}

static const char *const key_type_cases[] = {
  "leaf1.pem", "rsa2048.pem", "p384.pem", "ed25519.pem", "rsapss.pem",
};

/* pintls, certtool and the OpenSSL pipeline agree on public-key pins. */
static void
test_spki_pin (gconstpointer data)
{
  const char *name = data;
  g_autoptr(GBytes) der = NULL;
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autofree char *from_der = NULL;
  g_autofree char *from_certificate = NULL;
  g_autofree char *certtool = NULL;
  g_autofree char *openssl = NULL;
  g_autoptr(GError) error = NULL;

  if (!require_program ("certtool") || !require_program ("openssl"))
    return;

  der = load_first_der (name);
  certificate = load_certificate (name);
  from_der = pin_tls_spki_pin_for_der (der, &error);
  g_assert_no_error (error);
  from_certificate = pin_tls_spki_pin_for_certificate (certificate, &error);
  g_assert_no_error (error);

  certtool = test_certtool_pin (name);
  openssl = openssl_pin (name);

  g_assert_cmpstr (from_der, ==, certtool);
  g_assert_cmpstr (from_der, ==, openssl);
  g_assert_cmpstr (from_certificate, ==, certtool);
}

static void
test_spki_pin_garbage (void)
{
  g_autoptr(GBytes) garbage = g_bytes_new_static ("not a certificate", 17);
  g_autoptr(GError) error = NULL;
  g_autofree char *pin = NULL;

  pin = pin_tls_spki_pin_for_der (garbage, &error);

  g_assert_null (pin);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_CERTIFICATE);
}

static void
random_digest (guint8 *digest)
{
  guint i;

  for (i = 0; i < PIN_TLS_DIGEST_SIZE; i += 4)
    {
      guint32 value = g_test_rand_int ();

      memcpy (digest + i, &value, 4);
    }
}

static char *
spki_pin_from_digest (const guint8 *digest)
{
  g_autofree char *base64 = g_base64_encode (digest, PIN_TLS_DIGEST_SIZE);

  return g_strconcat ("sha256/", base64, NULL);
}

static void
test_large_set (void)
{
  g_autoptr(GPtrArray) pins = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GBytes) leaf = load_first_der ("leaf1.pem");
  g_autoptr(PinTlsPinSet) set = NULL;
  g_autoptr(GError) error = NULL;
  guint8 present[PIN_TLS_DIGEST_SIZE];
  guint8 absent[PIN_TLS_DIGEST_SIZE];
  guint i;

  for (i = 0; i < LARGE_SET_SIZE; i++)
    {
      guint8 digest[PIN_TLS_DIGEST_SIZE];

      random_digest (digest);
      if (i == LARGE_SET_SIZE / 3)
        memcpy (present, digest, sizeof present);
      g_ptr_array_add (pins, spki_pin_from_digest (digest));
    }
  g_ptr_array_add (pins, pin_tls_spki_pin_for_der (leaf, &error));
  g_assert_no_error (error);
  g_ptr_array_add (pins, NULL);

  set = pin_set_new_checked ((const char *const *) pins->pdata);
  memcpy (absent, present, sizeof absent);
  absent[PIN_TLS_DIGEST_SIZE - 1] ^= 0x01;

  g_assert_cmpuint (pin_tls_pin_set_get_size (set), ==, LARGE_SET_SIZE + 1);
  g_assert_true (_pin_tls_pin_set_contains (set, PIN_TLS_PIN_KIND_SPKI,
                                            present));
  g_assert_false (_pin_tls_pin_set_contains (set, PIN_TLS_PIN_KIND_SPKI,
                                             absent));
  g_assert_false (_pin_tls_pin_set_contains (set, PIN_TLS_PIN_KIND_CERTIFICATE,
                                             present));
  g_assert_true (matches (set, "leaf1.pem"));
  g_assert_false (matches (set, "leaf2.pem"));
}

typedef struct
{
  const char *path;
  const char *name;
  const char *normalized; /* NULL: invalid */
} NameCase;

static const NameCase name_cases[] = {
  { "/pintls/names/normalize/trailing-dot", "Host.TEST.", "host.test" },
  { "/pintls/names/normalize/two-trailing-dots", "host.test..", NULL },
  { "/pintls/names/normalize/idn", "bücher.test", "xn--bcher-kva.test" },
  { "/pintls/names/normalize/idn-upper-case", "BÜCHER.test",
    "xn--bcher-kva.test" },
  { "/pintls/names/normalize/a-label-upper-case", "XN--BCHER-KVA.test",
    "xn--bcher-kva.test" },
  { "/pintls/names/normalize/ipv4", "127.0.0.1", "127.0.0.1" },
  { "/pintls/names/normalize/ipv6", "::1", "::1" },
  { "/pintls/names/normalize/ipv6-long-form", "0000:0000::0001", "::1" },
  { "/pintls/names/normalize/ipv6-upper-case", "FE80::A", "fe80::a" },
  /* The address part of a scoped address is canonical; the zone names an
   * interface, as written. */
  { "/pintls/names/normalize/ipv6-zone", "FE80:0::A%Eth0", "fe80::a%Eth0" },
  /* g_hostname_is_ip_address () accepts a lone colon. */
  { "/pintls/names/normalize/lone-colon", ":", NULL },
  /* GLib calls any bytes after "%" a zone, even ones that are not UTF-8. */
  { "/pintls/names/normalize/ipv6-zone-vlan", "fe80::a%eth0.100", "fe80::a%eth0.100" },
  { "/pintls/names/normalize/ipv6-zone-empty", "fe80::a%", NULL },
  { "/pintls/names/normalize/ipv6-zone-percent", "::2%%%", NULL },
  { "/pintls/names/normalize/ipv6-zone-not-utf8", "::2%e\xc1", NULL },
  { "/pintls/names/normalize/ipv6-zone-space", "::1%a b", NULL },
  { "/pintls/names/normalize/empty", "", NULL },
  { "/pintls/names/normalize/only-dot", ".", NULL },
  { "/pintls/names/normalize/empty-label", "host..test", NULL },
  { "/pintls/names/normalize/leading-dot", ".host.test", NULL },
  { "/pintls/names/normalize/space", "host .test", NULL },
  { "/pintls/names/normalize/longest-label",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test" },
  { "/pintls/names/normalize/long-label",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test",
    NULL },
};

static void
test_normalize_host_name (gconstpointer data)
{
  const NameCase *name = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *normalized = NULL;

  normalized = _pin_tls_normalize_host_name (name->name, &error);

  if (name->normalized != NULL)
    {
      g_assert_no_error (error);
      g_assert_cmpstr (normalized, ==, name->normalized);
    }
  else
    {
      g_assert_null (normalized);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    }
}

typedef struct
{
  const char *path;
  const char *text;
  const char *described;
} DescribeCase;

/* Text quoted back in messages comes from users and from servers (the
 * subject names of certificates): nothing in it may reorder, hide or
 * rewrite what a terminal shows. */
static const DescribeCase describe_cases[] = {
  { "/pintls/names/describe/plain", "sha256/abc", "“sha256/abc”" },
  { "/pintls/names/describe/control", "a\nb\x1b[2Jc", "“a\\x0ab\\x1b[2Jc”" },
  { "/pintls/names/describe/c1-control", "a\xc2\x9b" "31m", "“a\\x9b31m”" },
  { "/pintls/names/describe/right-to-left-override",
    "CN=gpj.\xe2\x80\xae" "exe", "“CN=gpj.\\u202eexe”" },
  { "/pintls/names/describe/byte-order-mark", "\xef\xbb\xbfsha256/abc",
    "“\\ufeffsha256/abc”" },
  { "/pintls/names/describe/zero-width-space", "a\xe2\x80\x8b" "b",
    "“a\\u200bb”" },
  { "/pintls/names/describe/line-separator", "a\xe2\x80\xa8" "b",
    "“a\\u2028b”" },
  { "/pintls/names/describe/non-ascii", "bücher.test", "“bücher.test”" },
  { "/pintls/names/describe/invalid-utf8", "a\xff" "b", "“a\xef\xbf\xbd" "b”" },
  { "/pintls/names/describe/long",
    "0123456789012345678901234567890123456789012345678901234567890123456789",
    "“0123456789012345678901234567890123456789012345678901234567890123…”" },
};

static void
test_describe_text (gconstpointer data)
{
  const DescribeCase *describe = data;
  g_autofree char *described = _pin_tls_describe_text (describe->text);

  g_assert_cmpstr (described, ==, describe->described);
}

int
main (int   argc,
      char *argv[])
{
  guint i;

  g_test_init (&argc, &argv, NULL);

  for (i = 0; i < G_N_ELEMENTS (spelling_cases); i++)
    g_test_add_data_func (spelling_cases[i].path, &spelling_cases[i],
                          test_parse_spelling);
  g_test_add_func ("/pintls/pins/parse-url-safe-alphabet",
                   test_parse_url_safe_alphabet);
  g_test_add_func ("/pintls/pins/parse-leading-slash",
                   test_parse_leading_slash);
  g_test_add_data_func ("/pintls/pins/parse-fingerprint-lower",
                        GINT_TO_POINTER (HEX_LOWER), test_parse_fingerprint);
  g_test_add_data_func ("/pintls/pins/parse-fingerprint-upper-colons",
                        GINT_TO_POINTER (HEX_UPPER_COLONS),
                        test_parse_fingerprint);
  g_test_add_data_func ("/pintls/pins/parse-fingerprint-spaces",
                        GINT_TO_POINTER (HEX_SPACES), test_parse_fingerprint);

  for (i = 0; i < G_N_ELEMENTS (invalid_cases); i++)
    g_test_add_data_func (invalid_cases[i].path, &invalid_cases[i],
                          test_parse_invalid);
  g_test_add_func ("/pintls/pins/invalid/empty-list", test_parse_empty_list);

  g_test_add ("/pintls/pins/file/pin-lines", TmpDir, NULL, tmp_dir_setup,
              test_file_pin_lines, tmp_dir_teardown);
  g_test_add ("/pintls/pins/file/fingerprint-first", TmpDir, NULL,
              tmp_dir_setup, test_file_fingerprint_first, tmp_dir_teardown);
  for (i = 0; i < G_N_ELEMENTS (bad_file_cases); i++)
    g_test_add (bad_file_cases[i].path, TmpDir, &bad_file_cases[i],
                tmp_dir_setup, test_file_bad, tmp_dir_teardown);
  g_test_add ("/pintls/pins/file/pins-beside-certificates", TmpDir, NULL,
              tmp_dir_setup, test_file_pins_beside_certificates,
              tmp_dir_teardown);
  g_test_add ("/pintls/pins/file/pem-with-text", TmpDir, NULL, tmp_dir_setup,
              test_file_pem_with_text, tmp_dir_teardown);
  g_test_add_func ("/pintls/pins/file/pem-chain", test_file_pem_chain);
  g_test_add_func ("/pintls/pins/file/der", test_file_der);

  g_test_add_func ("/pintls/pins/from-certificates", test_from_certificates);
  g_test_add_func ("/pintls/pins/from-no-certificates",
                   test_from_no_certificates);
  g_test_add_func ("/pintls/pins/union", test_union);
  g_test_add_func ("/pintls/pins/union-kinds", test_union_kinds);
  g_test_add_func ("/pintls/pins/union-unbuilt", test_union_unbuilt);
  g_test_add_func ("/pintls/pins/size", test_size);
  g_test_add_func ("/pintls/pins/matches-certificate",
                   test_matches_certificate);
  g_test_add_func ("/pintls/pins/matches-fingerprint-as-spki",
                   test_matches_fingerprint_as_spki);
  g_test_add_func ("/pintls/pins/matches-garbage", test_matches_garbage);

  for (i = 0; i < G_N_ELEMENTS (key_type_cases); i++)
    {
      g_autofree char *path = NULL;
      g_autofree char *base = g_strndup (key_type_cases[i],
                                         strlen (key_type_cases[i]) - 4);

      path = g_strdup_printf ("/pintls/pins/spki-pin/%s", base);
      g_test_add_data_func (path, key_type_cases[i], test_spki_pin);
    }
  g_test_add_func ("/pintls/pins/spki-pin-garbage", test_spki_pin_garbage);
  g_test_add_func ("/pintls/pins/large-set", test_large_set);

  for (i = 0; i < G_N_ELEMENTS (name_cases); i++)
    g_test_add_data_func (name_cases[i].path, &name_cases[i],
                          test_normalize_host_name);
  for (i = 0; i < G_N_ELEMENTS (describe_cases); i++)
    g_test_add_data_func (describe_cases[i].path, &describe_cases[i],
                          test_describe_text);

  return g_test_run ();
}
