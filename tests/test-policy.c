/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Pin policies without a network: which entry applies to a host, what a
 * handshake's decision becomes under report-only entries and expiry, what
 * is reported, policy files and lint. Chains come from data/certs, and
 * "CA" means data/certs/rootA.pem. */

#include "test-utils.h"

#include <glib/gstdio.h>
#include <string.h>

/* The public-key pin of the first certificate of a file, from certtool,
 * which each file is run through once. */
static char *
pin_of (const char *name)
{
  static GHashTable *pins;
  const char *pin;

  if (pins == NULL)
    pins = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  pin = g_hash_table_lookup (pins, name);
  if (pin == NULL)
    {
      pin = test_certtool_pin (name);
      g_hash_table_insert (pins, g_strdup (name), (char *) pin);
    }

  return g_strdup (pin);
}

/* A pin set of the public keys of the first certificate of each file. */
static PinTlsPinSet *
pins_of (const char *first,
         ...)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) strings = NULL;
  g_autoptr(GError) error = NULL;
  PinTlsPinSet *set;
  const char *name;
  va_list args;

  va_start (args, first);
  for (name = first; name != NULL; name = va_arg (args, const char *))
    {
      g_autofree char *pin = pin_of (name);

      g_strv_builder_add (builder, pin);
    }
  va_end (args);

  strings = g_strv_builder_end (builder);
  set = pin_tls_pin_set_new ((const char *const *) strings, &error);
  g_assert_no_error (error);

  return set;
}

#define PINS(...) pins_of (__VA_ARGS__, NULL)

static PinTlsPolicyEntry *
entry_new (const char   *pattern,
           PinTlsPinSet *pins)
{
  g_autoptr(GError) error = NULL;
  PinTlsPolicyEntry *entry = pin_tls_policy_entry_new (pattern, pins, &error);

  g_assert_no_error (error);
  return entry;
}

static void
add_entry (PinTlsPolicy      *policy,
           PinTlsPolicyEntry *entry)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (pin_tls_policy_add_entry (policy, entry, &error));
  g_assert_no_error (error);
}

/* Adds an entry for @pattern with @pins (taken) and returns it, unowned. */
static PinTlsPolicyEntry *
add_pattern (PinTlsPolicy *policy,
             const char   *pattern,
             gboolean      include_subdomains,
             PinTlsPinSet *pins)
{
  g_autoptr(PinTlsPinSet) owned = pins;
  g_autoptr(PinTlsPolicyEntry) entry = entry_new (pattern, owned);

  pin_tls_policy_entry_set_include_subdomains (entry, include_subdomains);
  add_entry (policy, entry);

  return entry;
}

static GDateTime *
utc (const char *iso8601)
{
  g_autoptr(GTimeZone) zone = g_time_zone_new_utc ();
  GDateTime *time = g_date_time_new_from_iso8601 (iso8601, zone);

  g_assert_nonnull (time);
  return time;
}

/* Host matching ------------------------------------------------------------ */

/* Every kind of pattern, each spelt oddly on purpose. */
static PinTlsPolicy *
matching_policy (void)
{
  PinTlsPolicy *policy = pin_tls_policy_new ();

  add_pattern (policy, "Host.TEST.", FALSE, PINS ("leaf1.pem"));
  add_pattern (policy, "*.wild.test", FALSE, PINS ("leaf1.pem"));
  add_pattern (policy, "deep.test", TRUE, PINS ("leaf1.pem"));
  add_pattern (policy, "a.deep.test", FALSE, PINS ("leaf1.pem"));
  add_pattern (policy, "*.b.deep.test", FALSE, PINS ("leaf1.pem"));
  add_pattern (policy, "c.deep.test", TRUE, PINS ("leaf1.pem"));
  add_pattern (policy, "bücher.test", FALSE, PINS ("leaf1.pem"));
  add_pattern (policy, "XN--MNCHEN-3YA.test", FALSE, PINS ("leaf1.pem"));
  add_pattern (policy, "localhost", FALSE, PINS ("leaf1.pem"));
  add_pattern (policy, "127.0.0.1", FALSE, PINS ("leaf1.pem"));
  add_pattern (policy, "0:0::1", FALSE, PINS ("leaf1.pem"));
  add_pattern (policy, "FE80::1%eth0", FALSE, PINS ("leaf1.pem"));

  return policy;
}

typedef struct
{
  const char *path;
  const char *host;
  const char *pattern; /* the entry that applies, or NULL for none */
} MatchCase;

static const MatchCase match_cases[] = {
  /* exact */
  { "/pintls/policy/match/exact", "host.test", "host.test" },
  { "/pintls/policy/match/exact-upper-case", "HOST.Test", "host.test" },
  { "/pintls/policy/match/exact-trailing-dot", "host.test.", "host.test" },
  { "/pintls/policy/match/exact-not-subdomain", "www.host.test", NULL },
  { "/pintls/policy/match/exact-not-suffix", "nothost.test", NULL },
  { "/pintls/policy/match/exact-not-prefix", "host.test.evil", NULL },
  { "/pintls/policy/match/single-label", "LOCALHOST.", "localhost" },
  /* one label */
  { "/pintls/policy/match/wildcard", "a.wild.test", "*.wild.test" },
  { "/pintls/policy/match/wildcard-upper-case", "A.WILD.TEST.", "*.wild.test" },
  { "/pintls/policy/match/wildcard-bare-parent", "wild.test", NULL },
  { "/pintls/policy/match/wildcard-two-labels", "a.b.wild.test", NULL },
  { "/pintls/policy/match/wildcard-not-suffix", "awild.test", NULL },
  { "/pintls/policy/match/wildcard-not-suffix-label", "a.notwild.test", NULL },
  /* include-subdomains, and the most specific entry */
  { "/pintls/policy/match/subdomains-itself", "deep.test", "deep.test" },
  { "/pintls/policy/match/subdomains-one", "x.deep.test", "deep.test" },
  { "/pintls/policy/match/subdomains-deep", "x.y.z.deep.test", "deep.test" },
  { "/pintls/policy/match/subdomains-trailing-dot", "X.Deep.Test.", "deep.test" },
  { "/pintls/policy/match/subdomains-not-suffix", "notdeep.test", NULL },
  { "/pintls/policy/match/subdomains-not-suffix-deep", "x.notdeep.test", NULL },
  { "/pintls/policy/match/exact-beats-subdomains", "a.deep.test", "a.deep.test" },
  { "/pintls/policy/match/exact-only-itself", "x.a.deep.test", "deep.test" },
  { "/pintls/policy/match/wildcard-beats-subdomains", "x.b.deep.test",
    "*.b.deep.test" },
  { "/pintls/policy/match/wildcard-parent-falls-back", "b.deep.test", "deep.test" },
  { "/pintls/policy/match/wildcard-deeper-falls-back", "x.y.b.deep.test",
    "deep.test" },
  { "/pintls/policy/match/closest-subdomains", "x.y.c.deep.test", "c.deep.test" },
  { "/pintls/policy/match/closest-subdomains-itself", "c.deep.test", "c.deep.test" },
  /* internationalised names */
  { "/pintls/policy/match/idn-u-label", "bücher.test", "xn--bcher-kva.test" },
  { "/pintls/policy/match/idn-u-label-upper-case", "BÜCHER.test",
    "xn--bcher-kva.test" },
  { "/pintls/policy/match/idn-a-label", "xn--bcher-kva.test", "xn--bcher-kva.test" },
  { "/pintls/policy/match/idn-a-label-upper-case", "XN--BCHER-KVA.TEST.",
    "xn--bcher-kva.test" },
  { "/pintls/policy/match/idn-pattern-a-label", "münchen.test",
    "xn--mnchen-3ya.test" },
  { "/pintls/policy/match/idn-pattern-a-label-lower", "xn--mnchen-3ya.test",
    "xn--mnchen-3ya.test" },
  /* addresses */
  { "/pintls/policy/match/ipv4", "127.0.0.1", "127.0.0.1" },
  { "/pintls/policy/match/ipv4-other", "127.0.0.2", NULL },
  { "/pintls/policy/match/ipv4-as-parent", "1.127.0.0.1", NULL },
  { "/pintls/policy/match/ipv6", "::1", "::1" },
  { "/pintls/policy/match/ipv6-long-form", "0000:0000::0001", "::1" },
  { "/pintls/policy/match/ipv6-zone", "fe80:0::1%eth0", "fe80::1%eth0" },
  { "/pintls/policy/match/ipv6-other-zone", "fe80::1%eth1", NULL },
};

static void
test_match (gconstpointer data)
{
  const MatchCase *test = data;
  g_autoptr(PinTlsPolicy) policy = matching_policy ();
  g_autoptr(PinTlsPolicyEntry) entry = NULL;
  g_autoptr(GError) error = NULL;

  pin_tls_policy_set_refuse_unpinned (policy, FALSE);
  entry = pin_tls_policy_lookup (policy, test->host, &error);
  g_assert_no_error (error);

  if (test->pattern == NULL)
    g_assert_null (entry);
  else
    g_assert_cmpstr (pin_tls_policy_entry_get_pattern (entry), ==, test->pattern);
}

static void
test_match_refused (void)
{
  g_autoptr(PinTlsPolicy) policy = matching_policy ();
  g_autoptr(PinTlsPolicyEntry) entry = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (pin_tls_policy_get_refuse_unpinned (policy));
  entry = pin_tls_policy_lookup (policy, "www.host.test", &error);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_HOST_NOT_PINNED);
  g_assert_nonnull (strstr (error->message, "www.host.test"));
  g_assert_null (entry);
}

static void
test_match_invalid_host (void)
{
  const char *const hosts[] = { "host.test..", "", ".", "host..test", "bad host",
                                "host.test:443", ":", NULL };
  g_autoptr(PinTlsPolicy) policy = matching_policy ();
  guint i;

  for (i = 0; hosts[i] != NULL; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(PinTlsPolicyEntry) entry =
        pin_tls_policy_lookup (policy, hosts[i], &error);

      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      g_assert_null (entry);
    }
}

/* Entries and policies ------------------------------------------------------ */

static void
test_entry_defaults (void)
{
  g_autoptr(PinTlsPinSet) pins = PINS ("leaf1.pem", "leaf3.pem");
  g_autoptr(PinTlsPolicyEntry) entry = entry_new ("Bücher.Test.", pins);

  g_assert_cmpstr (pin_tls_policy_entry_get_pattern (entry), ==,
                   "xn--bcher-kva.test");
  g_assert_true (pin_tls_policy_entry_get_pins (entry) == pins);
  g_assert_cmpint (pin_tls_policy_entry_get_mode (entry), ==,
                   PIN_TLS_MODE_CA_AND_PINS);
  g_assert_false (pin_tls_policy_entry_get_include_subdomains (entry));
  g_assert_false (pin_tls_policy_entry_get_report_only (entry));
  g_assert_null (pin_tls_policy_entry_get_expires (entry));
  g_assert_false (pin_tls_policy_entry_get_fall_back_to_ca (entry));
}

static void
test_entry_expires_in_utc (void)
{
  g_autoptr(PinTlsPinSet) pins = PINS ("leaf1.pem");
  g_autoptr(PinTlsPolicyEntry) entry = entry_new ("host.test", pins);
  g_autoptr(GTimeZone) zone = g_time_zone_new_identifier ("+02:00");
  g_autoptr(GDateTime) local = g_date_time_new (zone, 2030, 1, 1, 2, 0, 0);
  g_autoptr(GDateTime) expected = utc ("2030-01-01T00:00:00Z");
  GDateTime *expires;

  pin_tls_policy_entry_set_expires (entry, local);
  expires = pin_tls_policy_entry_get_expires (entry);
  g_assert_true (g_date_time_equal (expires, expected));
  g_assert_cmpint (g_date_time_get_utc_offset (expires), ==, 0);

  pin_tls_policy_entry_set_expires (entry, NULL);
  g_assert_null (pin_tls_policy_entry_get_expires (entry));
}

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 GPtrArray  *notified)
{
  g_ptr_array_add (notified, (gpointer) g_param_spec_get_name (pspec));
}

/* The properties bindings see are the getters and setters, and notify
 * only when a value changes. */
static void
test_entry_properties (void)
{
  g_autoptr(PinTlsPinSet) pins = PINS ("leaf1.pem", "leaf3.pem");
  g_autoptr(PinTlsPolicyEntry) entry = entry_new ("*.Host.Test", pins);
  g_autoptr(GPtrArray) notified = g_ptr_array_new ();
  g_autoptr(GDateTime) expires = utc ("2030-01-01T00:00:00Z");
  g_autoptr(GDateTime) got_expires = NULL;
  g_autoptr(PinTlsPinSet) got_pins = NULL;
  g_autofree char *pattern = NULL;
  PinTlsMode mode;
  gboolean include_subdomains;
  gboolean report_only;
  gboolean fall_back_to_ca;

  g_signal_connect (entry, "notify", G_CALLBACK (count_notify_cb), notified);
  g_object_set (entry, "mode", PIN_TLS_MODE_PIN_ONLY, "include-subdomains", TRUE,
                "report-only", TRUE, "expires", expires, "fall-back-to-ca", TRUE,
                NULL);
  g_assert_cmpuint (notified->len, ==, 5);

  g_assert_cmpint (pin_tls_policy_entry_get_mode (entry), ==, PIN_TLS_MODE_PIN_ONLY);
  g_assert_true (pin_tls_policy_entry_get_include_subdomains (entry));
  g_assert_true (pin_tls_policy_entry_get_report_only (entry));
  g_assert_true (g_date_time_equal (pin_tls_policy_entry_get_expires (entry), expires));
  g_assert_true (pin_tls_policy_entry_get_fall_back_to_ca (entry));

  g_object_get (entry, "pattern", &pattern, "pins", &got_pins, "mode", &mode,
                "include-subdomains", &include_subdomains, "report-only",
                &report_only, "expires", &got_expires, "fall-back-to-ca",
                &fall_back_to_ca, NULL);
  g_assert_cmpstr (pattern, ==, "*.host.test");
  g_assert_true (got_pins == pins);
  g_assert_cmpint (mode, ==, PIN_TLS_MODE_PIN_ONLY);
  g_assert_true (include_subdomains);
  g_assert_true (report_only);
  g_assert_true (g_date_time_equal (got_expires, expires));
  g_assert_true (fall_back_to_ca);

  /* The same values again change nothing. */
  g_object_set (entry, "mode", PIN_TLS_MODE_PIN_ONLY, "include-subdomains", TRUE,
                "report-only", TRUE, "fall-back-to-ca", TRUE, NULL);
  g_assert_cmpuint (notified->len, ==, 5);

  g_object_set (entry, "expires", NULL, NULL);
  g_assert_null (pin_tls_policy_entry_get_expires (entry));
  g_assert_cmpuint (notified->len, ==, 6);
  g_object_set (entry, "expires", NULL, NULL);
  g_assert_cmpuint (notified->len, ==, 6);
  g_assert_cmpstr (notified->pdata[5], ==, "expires");

  g_signal_handlers_disconnect_by_data (entry, notified);
}

static void
test_policy_refuse_unpinned (void)
{
  g_autoptr(PinTlsPolicy) policy = matching_policy ();
  g_autoptr(GPtrArray) notified = g_ptr_array_new ();
  g_autoptr(PinTlsPolicyEntry) entry = NULL;
  g_autoptr(GError) error = NULL;
  gboolean refuse_unpinned = FALSE;

  g_object_get (policy, "refuse-unpinned", &refuse_unpinned, NULL);
  g_assert_true (refuse_unpinned);

  g_signal_connect (policy, "notify", G_CALLBACK (count_notify_cb), notified);
  g_object_set (policy, "refuse-unpinned", FALSE, NULL);
  g_object_set (policy, "refuse-unpinned", FALSE, NULL);
  g_assert_cmpuint (notified->len, ==, 1);
  g_object_get (policy, "refuse-unpinned", &refuse_unpinned, NULL);
  g_assert_false (refuse_unpinned);
  g_assert_false (pin_tls_policy_get_refuse_unpinned (policy));

  /* An unpinned host is no longer an error; a pinned one keeps its pins. */
  entry = pin_tls_policy_lookup (policy, "other.test", &error);
  g_assert_no_error (error);
  g_assert_null (entry);
  entry = pin_tls_policy_lookup (policy, "host.test", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (pin_tls_policy_entry_get_pattern (entry), ==, "host.test");

  g_signal_handlers_disconnect_by_data (policy, notified);
}

static void
test_entry_frozen (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(PinTlsPolicy) policy = pin_tls_policy_new ();
      PinTlsPolicyEntry *entry =
        add_pattern (policy, "host.test", FALSE, PINS ("leaf1.pem"));

      pin_tls_policy_entry_set_report_only (entry, TRUE);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*!entry->frozen*");
}

typedef struct
{
  const char *path;
  const char *pattern;
  const char *reason; /* a part of the message */
} PatternCase;

static const PatternCase pattern_cases[] = {
  { "/pintls/policy/entry/invalid/url", "https://host.test/", "URL" },
  { "/pintls/policy/entry/invalid/url-no-path", "https://host.test", "URL" },
  { "/pintls/policy/entry/invalid/path", "host.test/api", "URL" },
  { "/pintls/policy/entry/invalid/port", "host.test:443", "port" },
  { "/pintls/policy/entry/invalid/wildcard-port", "*.host.test:443", "port" },
  { "/pintls/policy/entry/invalid/bracketed-ipv6", "[::1]", "without brackets" },
  { "/pintls/policy/entry/invalid/bracketed-ipv6-port", "[::1]:443",
    "without brackets" },
  { "/pintls/policy/entry/invalid/star", "*", "first label" },
  { "/pintls/policy/entry/invalid/star-dot", "*.", "empty" },
  { "/pintls/policy/entry/invalid/star-in-label", "a*.host.test", "first label" },
  { "/pintls/policy/entry/invalid/two-stars", "*.*.host.test", "first label" },
  { "/pintls/policy/entry/invalid/inner-star", "a.*.host.test", "first label" },
  { "/pintls/policy/entry/invalid/double-star", "**.host.test", "first label" },
  { "/pintls/policy/entry/invalid/empty", "", "empty" },
  { "/pintls/policy/entry/invalid/dot", ".", "label" },
  { "/pintls/policy/entry/invalid/two-trailing-dots", "host.test..", "empty label" },
  { "/pintls/policy/entry/invalid/empty-label", "host..test", "empty label" },
  { "/pintls/policy/entry/invalid/space", "host test", "character" },
  { "/pintls/policy/entry/invalid/wildcard-address", "*.127.0.0.1", "IP address" },
  { "/pintls/policy/entry/invalid/colon", ":", "not a valid IP address" },
  { "/pintls/policy/entry/invalid/zone-not-utf8", "::2%%%\xc1?", "zone" },
};

static void
test_entry_invalid (gconstpointer data)
{
  const PatternCase *test = data;
  g_autoptr(PinTlsPinSet) pins = PINS ("leaf1.pem");
  g_autoptr(PinTlsPolicyEntry) entry = NULL;
  g_autoptr(GError) error = NULL;

  entry = pin_tls_policy_entry_new (test->pattern, pins, &error);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_POLICY);
  g_assert_null (entry);
  g_assert_nonnull (strstr (error->message, test->reason));
}

typedef struct
{
  const char *path;
  const char *first;
  gboolean first_subdomains;
  const char *second;
  gboolean second_subdomains;
} ConflictCase;

static const ConflictCase conflict_cases[] = {
  { "/pintls/policy/add/duplicate", "host.test", FALSE, "host.test", FALSE },
  { "/pintls/policy/add/duplicate-spelling", "host.test", FALSE, "HOST.Test.",
    FALSE },
  { "/pintls/policy/add/duplicate-idn", "bücher.test", FALSE, "xn--bcher-kva.test",
    FALSE },
  { "/pintls/policy/add/duplicate-wildcard", "*.host.test", FALSE, "*.Host.Test",
    FALSE },
  { "/pintls/policy/add/exact-and-subdomains", "host.test", FALSE, "host.test",
    TRUE },
  { "/pintls/policy/add/subdomains-and-exact", "host.test", TRUE, "host.test",
    FALSE },
  { "/pintls/policy/add/wildcard-subdomains", NULL, FALSE, "*.host.test", TRUE },
  { "/pintls/policy/add/address-subdomains", NULL, FALSE, "127.0.0.1", TRUE },
};

static void
test_add_conflict (gconstpointer data)
{
  const ConflictCase *test = data;
  g_autoptr(PinTlsPolicy) policy = pin_tls_policy_new ();
  g_autoptr(PinTlsPinSet) pins = PINS ("leaf1.pem");
  g_autoptr(PinTlsPolicyEntry) entry = NULL;
  g_autoptr(GError) error = NULL;
  GList *entries;

  if (test->first != NULL)
    add_pattern (policy, test->first, test->first_subdomains, g_object_ref (pins));

  entry = entry_new (test->second, pins);
  pin_tls_policy_entry_set_include_subdomains (entry, test->second_subdomains);
  g_assert_false (pin_tls_policy_add_entry (policy, entry, &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_POLICY);

  /* The refused entry is not in the policy, and can still be changed. */
  entries = pin_tls_policy_get_entries (policy);
  g_assert_cmpuint (g_list_length (entries), ==, test->first != NULL ? 1 : 0);
  g_list_free_full (entries, g_object_unref);
  pin_tls_policy_entry_set_include_subdomains (entry, FALSE);
}

static void
test_entries_in_order (void)
{
  g_autoptr(PinTlsPolicy) policy = matching_policy ();
  GList *entries = pin_tls_policy_get_entries (policy);

  g_assert_cmpuint (g_list_length (entries), ==, 12);
  g_assert_cmpstr (pin_tls_policy_entry_get_pattern (entries->data), ==,
                   "host.test");
  g_assert_cmpstr (pin_tls_policy_entry_get_pattern (g_list_last (entries)->data),
                   ==, "fe80::1%eth0");
  g_list_free_full (entries, g_object_unref);
}

/* Decisions and reports ----------------------------------------------------- */

typedef struct
{
  PinTlsPolicy *policy;
  GPtrArray *reports;
  GDateTime *now;
  gnutls_x509_trust_list_t trust_list;
} DecideFixture;

static GDateTime *
fixture_now (gpointer user_data)
{
  DecideFixture *fixture = user_data;

  return g_date_time_ref (fixture->now);
}

static void
report_cb (PinTlsPolicy *policy,
           PinTlsReport *report,
           GPtrArray    *reports)
{
  g_ptr_array_add (reports, g_object_ref (report));
}

static void
decide_setup (DecideFixture *fixture,
              gconstpointer  data)
{
  g_autofree char *ca = test_data_path ("rootA.pem");

  fixture->policy = pin_tls_policy_new ();
  fixture->reports = g_ptr_array_new_with_free_func (g_object_unref);
  fixture->now = utc ("2026-06-01T12:00:00Z");
  _pin_tls_policy_set_now_func (fixture->policy, fixture_now, fixture);
  g_signal_connect (fixture->policy, "report", G_CALLBACK (report_cb),
                    fixture->reports);

  g_assert_cmpint (gnutls_x509_trust_list_init (&fixture->trust_list, 0), ==, 0);
  g_assert_cmpint (gnutls_x509_trust_list_add_trust_file (
                     fixture->trust_list, ca, NULL, GNUTLS_X509_FMT_PEM, 0, 0),
                   ==, 1);
}

static void
decide_teardown (DecideFixture *fixture,
                 gconstpointer  data)
{
  g_assert_finalize_object (fixture->policy);
  g_ptr_array_unref (fixture->reports);
  g_date_time_unref (fixture->now);
  gnutls_x509_trust_list_deinit (fixture->trust_list, 1);
}

static void
set_now (DecideFixture *fixture,
         const char    *iso8601)
{
  g_date_time_unref (fixture->now);
  fixture->now = utc (iso8601);
}

/* The DER certificates of the files, in order: a chain as served. */
static GPtrArray *
load_chain (const char *first,
            ...)
{
  GPtrArray *chain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  const char *name;
  va_list args;

  va_start (args, first);
  for (name = first; name != NULL; name = va_arg (args, const char *))
    {
      g_autoptr(GPtrArray) part = test_load_der_chain (name);
      guint i;

      for (i = 0; i < part->len; i++)
        g_ptr_array_add (chain, g_bytes_ref (part->pdata[i]));
    }
  va_end (args);

  return chain;
}

/* What a handshake with @host, presenting @chain, would decide under the
 * fixture's policy, with rootA as the trust anchor. Reports the outcome as
 * a GError, or TRUE. */
static gboolean
decide_chain (DecideFixture *fixture,
              const char    *host,
              GPtrArray     *chain,
              GError       **error)
{
  g_autofree gnutls_datum_t *der = _pin_tls_datums_from_bytes (chain);
  g_autofree char *name = NULL;
  PinTlsDecision decision;
  PinTlsTrust *trust;
  PinTlsRule rule;
  gboolean accepted;

  name = _pin_tls_normalize_host_name (host, error);
  if (name == NULL
      || !_pin_tls_rule_init_for_policy (&rule, fixture->policy, host, error))
    return FALSE;

  trust = _pin_tls_trust_new_for_list (fixture->trust_list);
  _pin_tls_rule_decide (&rule, &decision, der, chain->len, name, 443, trust);
  _pin_tls_trust_free (trust);
  _pin_tls_rule_clear (&rule);

  /* The decision is consistent whatever it is. */
  g_assert_true (decision.accepted == (decision.error == NULL));
  g_assert_true (!decision.accepted || decision.pin_matched);

  accepted = decision.accepted;
  if (!accepted)
    g_propagate_error (error, g_steal_pointer (&decision.error));
  _pin_tls_decision_clear (&decision);

  return accepted;
}

static gboolean
decide (DecideFixture *fixture,
        const char    *host,
        const char    *chain_file,
        GError       **error)
{
  g_autoptr(GPtrArray) chain = test_load_der_chain (chain_file);

  return decide_chain (fixture, host, chain, error);
}

static void
assert_accepted (DecideFixture *fixture,
                 const char    *host,
                 const char    *chain_file)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (decide (fixture, host, chain_file, &error));
  g_assert_no_error (error);
}

static void
assert_refused (DecideFixture *fixture,
                const char    *host,
                const char    *chain_file,
                GQuark         domain,
                int            code)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (decide (fixture, host, chain_file, &error));
  g_assert_error (error, domain, code);
}

/* The only report since the last call, checked for what every report says. */
static PinTlsReport *
take_report (DecideFixture *fixture,
             PinTlsVerdict  verdict,
             gboolean       refused)
{
  PinTlsReport *report;

  g_assert_cmpuint (fixture->reports->len, ==, 1);
  report = g_ptr_array_steal_index (fixture->reports, 0);
  g_assert_cmpint (pin_tls_report_get_verdict (report), ==, verdict);
  g_assert_cmpint (pin_tls_report_get_refused (report), ==, refused);
  g_assert_cmpuint (pin_tls_report_get_port (report), ==, 443);

  return report;
}

static void
test_decide_match (DecideFixture *fixture,
                   gconstpointer  data)
{
  g_autofree char *leaf1 = pin_of ("leaf1.pem");
  g_autofree char *leaf3 = pin_of ("leaf3.pem");
  g_autofree char *int_a = pin_of ("intA.pem");
  g_autoptr(PinTlsReport) report = NULL;
  const char *const *presented;
  const char *const *configured;

  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem", "leaf3.pem"));
  assert_accepted (fixture, "Host.Test.", "leaf1-chain.pem");

  report = take_report (fixture, PIN_TLS_VERDICT_MATCHED, FALSE);
  g_assert_cmpstr (pin_tls_report_get_host (report), ==, "host.test");
  g_assert_cmpstr (pin_tls_report_get_pattern (report), ==, "host.test");
  g_assert_cmpint (pin_tls_report_get_mode (report), ==, PIN_TLS_MODE_CA_AND_PINS);
  g_assert_false (pin_tls_report_get_report_only (report));
  presented = pin_tls_report_get_presented_pins (report);
  g_assert_cmpuint (g_strv_length ((char **) presented), ==, 2);
  g_assert_cmpstr (presented[0], ==, leaf1);
  g_assert_cmpstr (presented[1], ==, int_a);
  configured = pin_tls_report_get_configured_pins (report);
  g_assert_cmpuint (g_strv_length ((char **) configured), ==, 2);
  g_assert_true (g_strv_contains (configured, leaf1));
  g_assert_true (g_strv_contains (configured, leaf3));
}

static void
test_decide_mismatch (DecideFixture *fixture,
                      gconstpointer  data)
{
  g_autofree char *leaf1 = pin_of ("leaf1.pem");
  g_autofree char *leaf2 = pin_of ("leaf2.pem");
  g_autoptr(PinTlsReport) report = NULL;
  g_autoptr(GError) error = NULL;

  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem"));
  g_assert_false (decide (fixture, "host.test", "leaf2-chain.pem", &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_nonnull (strstr (error->message, leaf1));
  g_assert_nonnull (strstr (error->message, leaf2));

  report = take_report (fixture, PIN_TLS_VERDICT_PIN_MISMATCH, TRUE);
  g_assert_cmpstr (pin_tls_report_get_presented_pins (report)[0], ==, leaf2);
  g_assert_cmpstr (pin_tls_report_get_configured_pins (report)[0], ==, leaf1);
}

static void
test_decide_untrusted (DecideFixture *fixture,
                       gconstpointer  data)
{
  g_autoptr(PinTlsReport) report = NULL;

  /* Hierarchy B is not trusted: its pin matching changes nothing. */
  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leafB.pem"));
  assert_refused (fixture, "host.test", "leafB-chain.pem", G_TLS_ERROR,
                  G_TLS_ERROR_BAD_CERTIFICATE);
  report = take_report (fixture, PIN_TLS_VERDICT_UNTRUSTED, FALSE);
}

static void
test_decide_pin_only (DecideFixture *fixture,
                      gconstpointer  data)
{
  PinTlsPolicyEntry *entry = NULL;
  g_autoptr(PinTlsPolicyEntry) owned = NULL;
  g_autoptr(PinTlsPinSet) pins = PINS ("self.pem");

  owned = entry = entry_new ("host.test", pins);
  pin_tls_policy_entry_set_mode (entry, PIN_TLS_MODE_PIN_ONLY);
  add_entry (fixture->policy, entry);

  assert_accepted (fixture, "host.test", "self.pem");
  g_object_unref (take_report (fixture, PIN_TLS_VERDICT_MATCHED, FALSE));
  assert_refused (fixture, "host.test", "leaf1-chain.pem", PIN_TLS_ERROR,
                  PIN_TLS_ERROR_PIN_MISMATCH);
  g_object_unref (take_report (fixture, PIN_TLS_VERDICT_PIN_MISMATCH, TRUE));
}

/* An entry that only reports: mismatches pass, and are reported. */
static PinTlsPolicyEntry *
add_report_only (DecideFixture *fixture,
                 PinTlsMode     mode,
                 PinTlsPinSet  *pins)
{
  g_autoptr(PinTlsPinSet) owned = pins;
  g_autoptr(PinTlsPolicyEntry) entry = entry_new ("host.test", owned);

  pin_tls_policy_entry_set_report_only (entry, TRUE);
  pin_tls_policy_entry_set_mode (entry, mode);
  add_entry (fixture->policy, entry);

  return entry;
}

static void
test_report_only_mismatch (DecideFixture *fixture,
                           gconstpointer  data)
{
  g_autoptr(PinTlsReport) report = NULL;
  g_autofree char *leaf2 = pin_of ("leaf2.pem");

  add_report_only (fixture, PIN_TLS_MODE_CA_AND_PINS, PINS ("leaf1.pem"));
  assert_accepted (fixture, "host.test", "leaf2-chain.pem");

  report = take_report (fixture, PIN_TLS_VERDICT_PIN_MISMATCH, FALSE);
  g_assert_true (pin_tls_report_get_report_only (report));
  g_assert_cmpstr (pin_tls_report_get_presented_pins (report)[0], ==, leaf2);

  assert_accepted (fixture, "host.test", "leaf1-chain.pem");
  g_object_unref (take_report (fixture, PIN_TLS_VERDICT_MATCHED, FALSE));
}

static void
test_report_only_checks_ca (gconstpointer data)
{
  PinTlsMode mode = GPOINTER_TO_INT (data);
  DecideFixture fixture;

  decide_setup (&fixture, NULL);

  /* Whatever the mode, certificate authorities and the name decide: a
   * self-signed server, an untrusted hierarchy and a certificate for
   * another name are refused, even with their pins. */
  add_report_only (&fixture, mode, PINS ("self.pem", "leafB.pem", "other.pem"));
  assert_refused (&fixture, "host.test", "self.pem", G_TLS_ERROR,
                  G_TLS_ERROR_BAD_CERTIFICATE);
  assert_refused (&fixture, "host.test", "leafB-chain.pem", G_TLS_ERROR,
                  G_TLS_ERROR_BAD_CERTIFICATE);
  assert_refused (&fixture, "host.test", "other-chain.pem", G_TLS_ERROR,
                  G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_cmpuint (fixture.reports->len, ==, 3);

  decide_teardown (&fixture, NULL);
}

/* An entry for host.test pinning leaf1, expiring at the start of
 * 2030-01-01 UTC, written as a date alone. */
static void
add_expiring (DecideFixture *fixture,
              gboolean       fall_back_to_ca)
{
  g_autoptr(PinTlsPinSet) pins = PINS ("leaf1.pem");
  g_autoptr(PinTlsPolicyEntry) entry = entry_new ("host.test", pins);
  g_autoptr(GDateTime) expires = utc ("2030-01-01T00:00:00Z");

  pin_tls_policy_entry_set_expires (entry, expires);
  pin_tls_policy_entry_set_fall_back_to_ca (entry, fall_back_to_ca);
  add_entry (fixture->policy, entry);
}

static void
test_expiry_before (DecideFixture *fixture,
                    gconstpointer  data)
{
  add_expiring (fixture, GPOINTER_TO_INT (data));
  set_now (fixture, "2029-12-31T23:59:59Z");

  assert_refused (fixture, "host.test", "leaf2-chain.pem", PIN_TLS_ERROR,
                  PIN_TLS_ERROR_PIN_MISMATCH);
  g_object_unref (take_report (fixture, PIN_TLS_VERDICT_PIN_MISMATCH, TRUE));
  assert_accepted (fixture, "host.test", "leaf1-chain.pem");
  g_object_unref (take_report (fixture, PIN_TLS_VERDICT_MATCHED, FALSE));
}

static void
test_expiry_after_refuses (DecideFixture *fixture,
                           gconstpointer  data)
{
  const char *const times[] = { "2030-01-01T00:00:00Z", "2030-01-01T00:00:01Z",
                                "2031-06-01T00:00:00Z", NULL };
  guint i;

  add_expiring (fixture, FALSE);
  for (i = 0; times[i] != NULL; i++)
    {
      g_autoptr(GError) error = NULL;

      set_now (fixture, times[i]);
      g_assert_false (decide (fixture, "host.test", "leaf2-chain.pem", &error));
      g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PINS_EXPIRED);
      g_assert_nonnull (strstr (error->message, "2030-01-01"));
      g_object_unref (take_report (fixture, PIN_TLS_VERDICT_PINS_EXPIRED, TRUE));

      /* Pins that still match still pass. */
      assert_accepted (fixture, "host.test", "leaf1-chain.pem");
      g_object_unref (take_report (fixture, PIN_TLS_VERDICT_MATCHED, FALSE));
    }
}

static void
test_expiry_after_falls_back (DecideFixture *fixture,
                              gconstpointer  data)
{
  add_expiring (fixture, TRUE);
  set_now (fixture, "2030-01-01T00:00:01Z");

  assert_accepted (fixture, "host.test", "leaf2-chain.pem");
  g_object_unref (take_report (fixture, PIN_TLS_VERDICT_PINS_EXPIRED, FALSE));

  /* Certificate authorities decide alone now, and they do decide. */
  assert_refused (fixture, "host.test", "leafB-chain.pem", G_TLS_ERROR,
                  G_TLS_ERROR_BAD_CERTIFICATE);
  g_object_unref (take_report (fixture, PIN_TLS_VERDICT_UNTRUSTED, FALSE));
  assert_refused (fixture, "host.test", "other-chain.pem", G_TLS_ERROR,
                  G_TLS_ERROR_BAD_CERTIFICATE);
  g_object_unref (take_report (fixture, PIN_TLS_VERDICT_UNTRUSTED, FALSE));
}

static void
test_expiry_expired_certificate (DecideFixture *fixture,
                                 gconstpointer  data)
{
  g_autoptr(GPtrArray) chain = load_chain ("expired.pem", "intA.pem", NULL);
  g_autoptr(GError) error = NULL;

  /* Pins expiring is not certificates expiring: a matching pin does not
   * rescue an expired certificate. */
  add_pattern (fixture->policy, "host.test", FALSE, PINS ("expired.pem"));
  g_assert_false (decide_chain (fixture, "host.test", chain, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_nonnull (strstr (error->message, "expired"));
}

static void
test_unpinned_refused (DecideFixture *fixture,
                       gconstpointer  data)
{
  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem"));
  assert_refused (fixture, "other.test", "other-chain.pem", PIN_TLS_ERROR,
                  PIN_TLS_ERROR_HOST_NOT_PINNED);
  assert_refused (fixture, "www.host.test", "leaf1-chain.pem", PIN_TLS_ERROR,
                  PIN_TLS_ERROR_HOST_NOT_PINNED);
  g_assert_cmpuint (fixture->reports->len, ==, 0);
}

static void
test_unpinned_ca_only (DecideFixture *fixture,
                       gconstpointer  data)
{
  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem"));
  pin_tls_policy_set_refuse_unpinned (fixture->policy, FALSE);

  assert_accepted (fixture, "other.test", "other-chain.pem");
  assert_refused (fixture, "other.test", "leaf1-chain.pem", G_TLS_ERROR,
                  G_TLS_ERROR_BAD_CERTIFICATE);
  assert_refused (fixture, "other.test", "self.pem", G_TLS_ERROR,
                  G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_cmpuint (fixture->reports->len, ==, 0);

  /* The pinned host is still pinned. */
  assert_refused (fixture, "host.test", "leaf2-chain.pem", PIN_TLS_ERROR,
                  PIN_TLS_ERROR_PIN_MISMATCH);
}

/* Pins of one host never satisfy another's: a.test pins key KA, b.test key
 * KB; a certificate for b.test made with KA and, with pins alone deciding,
 * a certificate with KB presented for a.test are both impostors. */
static void
test_pins_scoped_to_host (DecideFixture *fixture,
                          gconstpointer  data)
{
  g_autoptr(GPtrArray) a = load_chain ("a.pem", "intA.pem", NULL);
  g_autoptr(GPtrArray) b = load_chain ("b.pem", "intA.pem", NULL);
  g_autoptr(GPtrArray) b_with_a_key =
    load_chain ("b-with-a-key.pem", "intA.pem", NULL);
  g_autoptr(GError) b_error = NULL;
  g_autoptr(GError) a_error = NULL;
  PinTlsPolicyEntry *a_entry;

  /* a.test first, b.test second: neither replaces the other. */
  a_entry = add_pattern (fixture->policy, "a.test", FALSE, PINS ("a.pem"));
  add_pattern (fixture->policy, "b.test", FALSE, PINS ("b.pem"));

  g_assert_true (decide_chain (fixture, "a.test", a, NULL));
  g_assert_true (decide_chain (fixture, "b.test", b, NULL));
  g_assert_false (decide_chain (fixture, "b.test", b_with_a_key, &b_error));
  g_assert_error (b_error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_cmpint (pin_tls_policy_entry_get_mode (a_entry), ==,
                   PIN_TLS_MODE_CA_AND_PINS);

  /* b.pem names b.test, so it would be refused for a.test on its name
   * alone; under a pin-only entry the key has to decide. */
  g_clear_object (&fixture->policy);
  fixture->policy = pin_tls_policy_new ();
  add_pattern (fixture->policy, "b.test", FALSE, PINS ("b.pem"));
  {
    g_autoptr(PinTlsPinSet) pins = PINS ("a.pem");
    g_autoptr(PinTlsPolicyEntry) entry = entry_new ("a.test", pins);

    pin_tls_policy_entry_set_mode (entry, PIN_TLS_MODE_PIN_ONLY);
    add_entry (fixture->policy, entry);
  }
  g_assert_true (decide_chain (fixture, "a.test", a, NULL));
  g_assert_false (decide_chain (fixture, "a.test", b, &a_error));
  g_assert_error (a_error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
}

/* Every spelling of a pinned name is pinned: case, one trailing dot, IDNs
 * as U-labels or A-labels, in the pattern and in the server name. */
static void
test_spellings_pinned (DecideFixture *fixture,
                       gconstpointer  data)
{
  const char *const host_spellings[] = { "host.test", "HOST.test", "host.test.",
                                         "Host.Test.", NULL };
  const char *const idn_spellings[] = { "xn--bcher-kva.test", "XN--BCHER-KVA.test",
                                        "bücher.test", "BÜCHER.TEST.", NULL };
  g_autoptr(GPtrArray) idn = load_chain ("idn.pem", "intA.pem", NULL);
  g_autoptr(GPtrArray) idn2 = load_chain ("idn2.pem", "intA.pem", NULL);
  guint i;

  add_pattern (fixture->policy, "HOST.Test.", FALSE, PINS ("leaf1.pem"));
  add_pattern (fixture->policy, "Bücher.test", FALSE, PINS ("idn.pem"));

  for (i = 0; host_spellings[i] != NULL; i++)
    {
      assert_refused (fixture, host_spellings[i], "leaf2-chain.pem", PIN_TLS_ERROR,
                      PIN_TLS_ERROR_PIN_MISMATCH);
      assert_accepted (fixture, host_spellings[i], "leaf1-chain.pem");
    }

  for (i = 0; idn_spellings[i] != NULL; i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_false (decide_chain (fixture, idn_spellings[i], idn2, &error));
      g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
      g_assert_true (decide_chain (fixture, idn_spellings[i], idn, NULL));
    }

  assert_refused (fixture, "host.test..", "leaf1-chain.pem", G_IO_ERROR,
                  G_IO_ERROR_INVALID_ARGUMENT);
}

/* Rotation: a reissued certificate with the same key, a new key under a
 * pinned intermediate, and a new intermediate, first without and then with
 * its backup pin. */
static void
test_rotation (DecideFixture *fixture,
               gconstpointer  data)
{
  g_autoptr(GPtrArray) reissued = load_chain ("leaf1-reissued.pem", "intA.pem", NULL);
  g_autoptr(GPtrArray) rekeyed = test_load_der_chain ("leaf3.pem");
  g_autoptr(GPtrArray) new_intermediate = test_load_der_chain ("leaf4-chain.pem");
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) findings = NULL;
  g_autoptr(GDateTime) now = utc ("2026-06-01T00:00:00Z");

  g_ptr_array_extend_and_steal (rekeyed, test_load_der_chain ("intA.pem"));
  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem", "intA.pem"));

  g_assert_true (decide_chain (fixture, "host.test", reissued, NULL));
  g_assert_true (decide_chain (fixture, "host.test", rekeyed, NULL));
  g_assert_false (decide_chain (fixture, "host.test", new_intermediate, &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);

  /* The next release adds the new intermediate as a backup. */
  g_clear_object (&fixture->policy);
  fixture->policy = pin_tls_policy_new ();
  add_pattern (fixture->policy, "host.test", FALSE,
               PINS ("leaf1.pem", "intA.pem", "intA2.pem"));
  add_pattern (fixture->policy, "localhost", FALSE, PINS ("leaf1.pem"));
  g_assert_true (decide_chain (fixture, "host.test", new_intermediate, NULL));

  /* A single pin works, and lint says what it risks. */
  g_assert_true (decide (fixture, "localhost", "leaf1-chain.pem", NULL));
  findings = pin_tls_policy_lint (fixture->policy, NULL, NULL, now);
  g_assert_cmpuint (g_strv_length (findings), ==, 1);
  g_assert_true (g_str_has_prefix (findings[0], "[localhost]: only one pin"));
}

static void
rule_for (PinTlsRule   *rule,
          PinTlsPolicy *policy,
          const char   *host)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (_pin_tls_rule_init_for_policy (rule, policy, host, &error));
  g_assert_no_error (error);
}

static gboolean
same_digest (const PinTlsRule *a,
             const PinTlsRule *b)
{
  return memcmp (a->digest, b->digest, sizeof a->digest) == 0;
}

/* A rule's digest, which keys resumption caches, changes with anything
 * that changes what the rule enforces. */
static void
test_rule_digest (DecideFixture *fixture,
                  gconstpointer  data)
{
  g_autoptr(PinTlsPinSet) pins = PINS ("leaf1.pem");
  PinTlsPolicyEntry *report_only;
  PinTlsPolicyEntry *expiring;
  g_autoptr(GDateTime) expires = utc ("2030-01-01T00:00:00Z");
  PinTlsRule rules[8];
  guint i, j;

  add_pattern (fixture->policy, "host.test", FALSE, g_object_ref (pins));
  add_pattern (fixture->policy, "other.test", FALSE, g_object_ref (pins));
  report_only = entry_new ("report.test", pins);
  pin_tls_policy_entry_set_report_only (report_only, TRUE);
  add_entry (fixture->policy, report_only);
  g_object_unref (report_only);
  expiring = entry_new ("expiring.test", pins);
  pin_tls_policy_entry_set_expires (expiring, expires);
  add_entry (fixture->policy, expiring);
  g_object_unref (expiring);

  rule_for (&rules[0], fixture->policy, "host.test");
  rule_for (&rules[1], fixture->policy, "other.test");
  rule_for (&rules[2], fixture->policy, "report.test");
  rule_for (&rules[3], fixture->policy, "expiring.test");
  set_now (fixture, "2030-06-01T00:00:00Z");
  rule_for (&rules[4], fixture->policy, "expiring.test");
  _pin_tls_rule_init_for_pins (&rules[5], pins, PIN_TLS_MODE_CA_AND_PINS);
  _pin_tls_rule_init_for_pins (&rules[6], pins, PIN_TLS_MODE_PIN_ONLY);
  pin_tls_policy_set_refuse_unpinned (fixture->policy, FALSE);
  rule_for (&rules[7], fixture->policy, "unpinned.test");
  g_assert_null (rules[7].pins);

  for (i = 0; i < G_N_ELEMENTS (rules); i++)
    for (j = i + 1; j < G_N_ELEMENTS (rules); j++)
      g_assert_false (same_digest (&rules[i], &rules[j]));

  /* The same entry gives the same rule, whatever the spelling. */
  {
    PinTlsRule again;

    rule_for (&again, fixture->policy, "HOST.test.");
    g_assert_true (same_digest (&rules[0], &again));
    _pin_tls_rule_clear (&again);
  }

  for (i = 0; i < G_N_ELEMENTS (rules); i++)
    _pin_tls_rule_clear (&rules[i]);
}

/* A second look at a chain, with the rule quiet, decides the same and
 * reports nothing. */
static void
test_rule_quiet (DecideFixture *fixture,
                 gconstpointer  data)
{
  g_autoptr(GPtrArray) chain = test_load_der_chain ("leaf2-chain.pem");
  g_autofree gnutls_datum_t *der = _pin_tls_datums_from_bytes (chain);
  PinTlsTrust *trust = _pin_tls_trust_new_for_list (fixture->trust_list);
  PinTlsDecision decision;
  PinTlsRule rule;

  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem"));
  rule_for (&rule, fixture->policy, "host.test");
  rule.quiet = TRUE;
  _pin_tls_rule_decide (&rule, &decision, der, chain->len, "host.test", 443, trust);
  g_assert_error (decision.error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_cmpuint (fixture->reports->len, ==, 0);

  _pin_tls_decision_clear (&decision);
  _pin_tls_rule_clear (&rule);
  _pin_tls_trust_free (trust);
}

static gpointer
exit_thread (gpointer data)
{
  return NULL;
}

/* A copied rule holds its own references, its report context among them:
 * it decides and reports as the original did after the original is gone. */
static void
test_rule_copy (DecideFixture *fixture,
                gconstpointer  data)
{
  g_autoptr(GPtrArray) chain = test_load_der_chain ("leaf2-chain.pem");
  g_autofree gnutls_datum_t *der = _pin_tls_datums_from_bytes (chain);
  PinTlsTrust *trust = _pin_tls_trust_new_for_list (fixture->trust_list);
  g_autoptr(GMainContext) context = g_main_context_new ();
  GThread *other = g_thread_new ("other", exit_thread, NULL);
  PinTlsDecision decision;
  PinTlsRule rule;
  PinTlsRule copy;

  /* Reports made on this thread go to the context of the other one. */
  g_thread_ref (other);
  g_thread_join (other);
  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem"));
  rule_for (&rule, fixture->policy, "host.test");
  _pin_tls_rule_set_report_context (&rule, context, other);
  _pin_tls_rule_copy (&copy, &rule);
  _pin_tls_rule_clear (&rule);
  g_thread_unref (other);

  _pin_tls_rule_decide (&copy, &decision, der, chain->len, "host.test", 443, trust);
  g_assert_error (decision.error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_cmpuint (fixture->reports->len, ==, 0);
  g_assert_true (g_main_context_iteration (context, FALSE));
  g_assert_cmpuint (fixture->reports->len, ==, 1);
  g_assert_cmpstr (pin_tls_report_get_pattern (fixture->reports->pdata[0]), ==,
                   "host.test");

  _pin_tls_decision_clear (&decision);
  _pin_tls_rule_clear (&copy);
  _pin_tls_trust_free (trust);
}

/* Policy files -------------------------------------------------------------- */

/* The public-key pin of a fixture certificate, spelt as certtool prints it
 * (pin-sha256:BASE64), to show that files take any syntax. */
static char *
certtool_spelling (const char *name)
{
  g_autofree char *pin = pin_of (name);

  return g_strconcat ("pin-sha256:", pin + strlen ("sha256/"), NULL);
}

/* Writes @contents, where "@leaf1@", "@leaf3@" and "@intA@" stand for
 * those pins ("@leaf1-curl@" for leaf1 spelt as curl spells it), to a file
 * in a new directory, and returns its path. */
static char *
write_policy (const char *contents)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("pintls-policy-XXXXXX", &error);
  g_autofree char *leaf1 = pin_of ("leaf1.pem");
  g_autofree char *leaf3 = certtool_spelling ("leaf3.pem");
  g_autofree char *leaf1_curl =
    g_strconcat ("sha256//", leaf1 + strlen ("sha256/"), NULL);
  g_autofree char *int_a = pin_of ("intA.pem");
  g_auto(GStrv) parts = NULL;
  g_autofree char *text = NULL;
  char *path;

  g_assert_no_error (error);
  parts = g_strsplit (contents, "@leaf1-curl@", -1);
  text = g_strjoinv (leaf1_curl, parts);
  g_strfreev (parts);
  parts = g_strsplit (text, "@leaf1@", -1);
  g_free (text);
  text = g_strjoinv (leaf1, parts);
  g_strfreev (parts);
  parts = g_strsplit (text, "@leaf3@", -1);
  g_free (text);
  text = g_strjoinv (leaf3, parts);
  g_strfreev (parts);
  parts = g_strsplit (text, "@intA@", -1);
  g_free (text);
  text = g_strjoinv (int_a, parts);

  path = g_build_filename (dir, "policy.ini", NULL);
  g_assert_true (g_file_set_contents (path, text, -1, &error));
  g_assert_no_error (error);

  return path;
}

static void
remove_policy (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);

  g_unlink (path);
  g_rmdir (dir);
}

static PinTlsPolicy *
load_policy (const char *contents,
             GError    **error)
{
  g_autofree char *path = write_policy (contents);
  PinTlsPolicy *policy = pin_tls_policy_new_from_file (path, error);

  remove_policy (path);
  return policy;
}

static PinTlsPolicyEntry *
lookup (PinTlsPolicy *policy,
        const char   *host)
{
  g_autoptr(GError) error = NULL;
  PinTlsPolicyEntry *entry = pin_tls_policy_lookup (policy, host, &error);

  g_assert_no_error (error);
  g_assert_nonnull (entry);
  return entry;
}

static void
test_file_every_setting (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PinTlsPolicy) policy = NULL;
  g_autoptr(PinTlsPolicyEntry) host = NULL;
  g_autoptr(PinTlsPolicyEntry) wild = NULL;
  g_autoptr(PinTlsPolicyEntry) deep = NULL;
  g_autoptr(PinTlsPinSet) expected = PINS ("leaf1.pem", "leaf3.pem");
  g_autoptr(GDateTime) midnight = utc ("2030-01-01T00:00:00Z");
  g_autoptr(GDateTime) noon = utc ("2030-01-01T10:00:00Z");

  policy = load_policy ("# a comment\n"
                        "[Pin Policy]\n"
                        "unpinned-hosts = ca-only\n"
                        "\n"
                        "[HOST.test.]\n"
                        "pins = @leaf1@ ; @leaf3@\n"
                        "mode = pin-only\n"
                        "report-only = true\n"
                        "expires = 2030-01-01\n"
                        "on-expiry = fall-back-to-ca\n"
                        "\n"
                        "[*.wild.test]\n"
                        "pins=@leaf1@,@leaf3@;\n"
                        "expires=2030-01-01T12:00:00+02:00\n"
                        "\n"
                        "[deep.test]\n"
                        "pins=@intA@;@leaf1@\n"
                        "include-subdomains=true\n"
                        "mode=ca-and-pins\n"
                        "on-expiry=refuse\n",
                        &error);
  g_assert_no_error (error);
  g_assert_false (pin_tls_policy_get_refuse_unpinned (policy));

  host = lookup (policy, "host.test");
  g_assert_true (
    pin_tls_pin_set_equal (pin_tls_policy_entry_get_pins (host), expected));
  g_assert_cmpint (pin_tls_policy_entry_get_mode (host), ==, PIN_TLS_MODE_PIN_ONLY);
  g_assert_true (pin_tls_policy_entry_get_report_only (host));
  g_assert_true (
    g_date_time_equal (pin_tls_policy_entry_get_expires (host), midnight));
  g_assert_true (pin_tls_policy_entry_get_fall_back_to_ca (host));
  g_assert_false (pin_tls_policy_entry_get_include_subdomains (host));

  wild = lookup (policy, "a.wild.test");
  g_assert_cmpstr (pin_tls_policy_entry_get_pattern (wild), ==, "*.wild.test");
  g_assert_true (
    pin_tls_pin_set_equal (pin_tls_policy_entry_get_pins (wild), expected));
  g_assert_cmpint (pin_tls_policy_entry_get_mode (wild), ==,
                   PIN_TLS_MODE_CA_AND_PINS);
  g_assert_true (g_date_time_equal (pin_tls_policy_entry_get_expires (wild), noon));
  g_assert_false (pin_tls_policy_entry_get_report_only (wild));
  g_assert_false (pin_tls_policy_entry_get_fall_back_to_ca (wild));

  deep = lookup (policy, "x.y.deep.test");
  g_assert_true (pin_tls_policy_entry_get_include_subdomains (deep));
  g_assert_null (pin_tls_policy_entry_get_expires (deep));
}

static void
test_file_date_and_time_without_offset (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PinTlsPolicy) policy = NULL;
  g_autoptr(PinTlsPolicyEntry) entry = NULL;
  g_autoptr(GDateTime) expected = utc ("2030-01-01T12:30:00Z");

  policy = load_policy ("[host.test]\npins=@leaf1@;@leaf3@\n"
                        "expires=2030-01-01T12:30:00\n",
                        &error);
  g_assert_no_error (error);
  entry = lookup (policy, "host.test");
  g_assert_true (
    g_date_time_equal (pin_tls_policy_entry_get_expires (entry), expected));
}

static void
test_file_example (void)
{
  const char *data_dir = g_getenv ("PINTLS_DATA_DIR");
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(PinTlsPolicy) policy = NULL;
  g_autoptr(PinTlsPolicyEntry) host = NULL;
  g_autoptr(PinTlsPolicyEntry) cdn = NULL;
  g_autoptr(PinTlsPolicyEntry) address = NULL;
  g_autoptr(PinTlsPinSet) host_pins = PINS ("leaf1.pem", "leaf3.pem");
  g_autoptr(GDateTime) now = utc ("2026-06-01T00:00:00Z");
  g_auto(GStrv) findings = NULL;
  GList *entries;

  path = data_dir ? g_build_filename (data_dir, "policy.example.ini", NULL)
                  : g_test_build_filename (G_TEST_DIST, "..", "data",
                                           "policy.example.ini", NULL);
  policy = pin_tls_policy_new_from_file (path, &error);
  g_assert_no_error (error);

  entries = pin_tls_policy_get_entries (policy);
  g_assert_cmpuint (g_list_length (entries), ==, 4);
  g_list_free_full (entries, g_object_unref);
  g_assert_true (pin_tls_policy_get_refuse_unpinned (policy));

  /* Its pins are those of the fixture, which data/make-certs.sh makes anew. */
  host = lookup (policy, "host.test");
  g_assert_true (
    pin_tls_pin_set_equal (pin_tls_policy_entry_get_pins (host), host_pins));
  cdn = lookup (policy, "a.cdn.example.test");
  g_assert_cmpstr (pin_tls_policy_entry_get_pattern (cdn), ==, "*.cdn.example.test");
  g_assert_true (pin_tls_policy_entry_get_report_only (cdn));
  address = lookup (policy, "127.0.0.1");
  g_assert_cmpint (pin_tls_policy_entry_get_mode (address), ==,
                   PIN_TLS_MODE_PIN_ONLY);
  g_assert_nonnull (pin_tls_policy_entry_get_expires (address));

  /* A good example: nothing to lint but the overlap it shows on purpose. */
  findings = pin_tls_policy_lint (policy, NULL, NULL, now);
  g_assert_cmpuint (g_strv_length (findings), ==, 1);
  g_assert_nonnull (strstr (findings[0], "[*.cdn.example.test] and [example.test]"));
}

static void
test_file_missing (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PinTlsPolicy) policy = NULL;

  policy = pin_tls_policy_new_from_file ("/nonexistent/pintls-policy.ini", &error);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_FILE);
  g_assert_nonnull (strstr (error->message, "/nonexistent/pintls-policy.ini"));
  g_assert_null (policy);
}

typedef struct
{
  const char *path;
  const char *contents;
  const char *where;  /* "[group] key" or "[group]" the message must name */
  const char *reason; /* another part of the message */
} FileErrorCase;

#define GOOD_PINS "pins=@leaf1@;@leaf3@\n"

static const FileErrorCase file_error_cases[] = {
  { "/pintls/policy/file/error/not-a-key-file", "pins=@leaf1@\n", NULL, "valid" },
  { "/pintls/policy/file/error/binary", "\x01\x02\xff\xfe", NULL, "valid" },
  { "/pintls/policy/file/error/empty", "", NULL, "no entries" },
  { "/pintls/policy/file/error/comments-only", "# nothing\n\n", NULL, "no entries" },
  { "/pintls/policy/file/error/settings-only",
    "[Pin Policy]\nunpinned-hosts=ca-only\n", NULL, "no entries" },
  { "/pintls/policy/file/error/no-pins", "[host.test]\nmode=pin-only\n",
    "[host.test] pins", "at least one pin" },
  { "/pintls/policy/file/error/empty-pins", "[host.test]\npins=\n",
    "[host.test] pins", "at least one pin" },
  { "/pintls/policy/file/error/only-separators", "[host.test]\npins=;, ;\n",
    "[host.test] pins", "no pin" },
  { "/pintls/policy/file/error/bad-pin", "[host.test]\npins=@leaf1@;sha256/abc\n",
    "[host.test] pins", "sha256/abc" },
  { "/pintls/policy/file/error/sha1-pin",
    "[host.test]\npins=sha1/AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "[host.test] pins",
    "SHA-1" },
  { "/pintls/policy/file/error/unknown-key",
    "[host.test]\n" GOOD_PINS "pin=@leaf1@\n", "[host.test] pin", "unknown key" },
  { "/pintls/policy/file/error/misspelt-key",
    "[host.test]\n" GOOD_PINS "includeSubdomains=true\n",
    "[host.test] includeSubdomains", "unknown key" },
  { "/pintls/policy/file/error/key-case", "[host.test]\nPins=@leaf1@\n",
    "[host.test] Pins", "unknown key" },
  { "/pintls/policy/file/error/localised-key",
    "[host.test]\n" GOOD_PINS "pins[de]=@leaf1@\n", "[host.test] pins[de]",
    "unknown key" },
  { "/pintls/policy/file/error/duplicate-key",
    "[host.test]\n" GOOD_PINS "pins=@leaf1@\n", "[host.test] pins",
    "more than once" },
  { "/pintls/policy/file/error/duplicate-group",
    "[host.test]\n" GOOD_PINS "[other.test]\n" GOOD_PINS "[host.test]\n" GOOD_PINS,
    "[host.test] pins", "more than once" },
  { "/pintls/policy/file/error/bad-mode", "[host.test]\n" GOOD_PINS "mode=ca-only\n",
    "[host.test] mode", "ca-and-pins or pin-only" },
  { "/pintls/policy/file/error/bad-include-subdomains",
    "[host.test]\n" GOOD_PINS "include-subdomains=yes\n",
    "[host.test] include-subdomains", "false or true" },
  { "/pintls/policy/file/error/bad-report-only",
    "[host.test]\n" GOOD_PINS "report-only=1\n", "[host.test] report-only",
    "false or true" },
  { "/pintls/policy/file/error/bad-on-expiry",
    "[host.test]\n" GOOD_PINS "expires=2030-01-01\non-expiry=allow\n",
    "[host.test] on-expiry", "refuse or fall-back-to-ca" },
  { "/pintls/policy/file/error/bad-date-month",
    "[host.test]\n" GOOD_PINS "expires=2030-13-01\n", "[host.test] expires",
    "2030-13-01" },
  { "/pintls/policy/file/error/bad-date-day",
    "[host.test]\n" GOOD_PINS "expires=2030-02-30\n", "[host.test] expires",
    "not a date" },
  { "/pintls/policy/file/error/bad-date-short",
    "[host.test]\n" GOOD_PINS "expires=2030-1-1\n", "[host.test] expires",
    "not a date" },
  { "/pintls/policy/file/error/bad-date-words",
    "[host.test]\n" GOOD_PINS "expires=tomorrow\n", "[host.test] expires",
    "not a date" },
  { "/pintls/policy/file/error/bad-date-hour",
    "[host.test]\n" GOOD_PINS "expires=2030-01-01T25:00:00Z\n",
    "[host.test] expires", "not a date" },
  { "/pintls/policy/file/error/empty-date", "[host.test]\n" GOOD_PINS "expires=\n",
    "[host.test] expires", "not a date" },
  { "/pintls/policy/file/error/bad-unpinned-hosts",
    "[Pin Policy]\nunpinned-hosts=allow\n[host.test]\n" GOOD_PINS,
    "[Pin Policy] unpinned-hosts", "refuse or ca-only" },
  { "/pintls/policy/file/error/unknown-policy-key",
    "[Pin Policy]\nreport-uri=https://example.com/\n[host.test]\n" GOOD_PINS,
    "[Pin Policy] report-uri", "unknown key" },
  { "/pintls/policy/file/error/url-pattern", "[https://host.test/]\n" GOOD_PINS,
    "[https://host.test/]", "URL" },
  { "/pintls/policy/file/error/port-pattern", "[host.test:443]\n" GOOD_PINS,
    "[host.test:443]", "port" },
  { "/pintls/policy/file/error/star-pattern", "[a*.host.test]\n" GOOD_PINS,
    "[a*.host.test]", "first label" },
  { "/pintls/policy/file/error/empty-label-pattern", "[host..test]\n" GOOD_PINS,
    "[host..test]", "empty label" },
  { "/pintls/policy/file/error/wildcard-subdomains",
    "[*.host.test]\n" GOOD_PINS "include-subdomains=true\n", "[*.host.test]",
    "cannot also include subdomains" },
  { "/pintls/policy/file/error/address-subdomains",
    "[127.0.0.1]\n" GOOD_PINS "include-subdomains=true\n", "[127.0.0.1]",
    "no subdomains" },
  { "/pintls/policy/file/error/same-host-two-spellings",
    "[host.test]\n" GOOD_PINS "[HOST.Test.]\n" GOOD_PINS, "[HOST.Test.]",
    "already" },
  { "/pintls/policy/file/error/exact-and-subdomains",
    "[host.test]\n" GOOD_PINS "[Host.test]\n" GOOD_PINS "include-subdomains=true\n",
    "[Host.test]", "already" },
  /* A value GKeyFile cannot read is an error, not an absent key: dropping
   * include-subdomains would leave the subdomains unpinned. */
  { "/pintls/policy/file/error/value-not-utf8",
    "[host.test]\n" GOOD_PINS "include-subdomains=tru\xff\n",
    "[host.test] include-subdomains", "not UTF-8" },
  { "/pintls/policy/file/error/value-bad-escape",
    "[host.test]\n" GOOD_PINS "include-subdomains=tr\\ue\n",
    "[host.test] include-subdomains", "cannot be interpreted" },
  { "/pintls/policy/file/error/value-lone-backslash",
    "[host.test]\n" GOOD_PINS "include-subdomains=true\\\n",
    "[host.test] include-subdomains", "lone backslash" },
  /* Which GLib 2.74 would warn about. */
  { "/pintls/policy/file/error/bad-escape-and-lone-backslash",
    "[host.test]\npins=@leaf1@\\p\\\n", "[host.test] pins", "lone backslash" },
  { "/pintls/policy/file/error/expiry-lone-backslash",
    "[host.test]\n" GOOD_PINS "expires=2030-01-01\\\n", "[host.test] expires",
    "lone backslash" },
  { "/pintls/policy/file/error/pins-not-utf8", "[host.test]\npins=@leaf1@\xfe\n",
    "[host.test] pins", "not UTF-8" },
  /* Names from the file are shown as valid UTF-8, and escaped where they
   * could disturb a terminal. */
  { "/pintls/policy/file/error/group-not-utf8", "[host.\xfftest]\n" GOOD_PINS,
    "[host.\xef\xbf\xbdtest]", "host" },
  { "/pintls/policy/file/error/group-bidi-override",
    "[host\xe2\x80\xae.test]\n" GOOD_PINS, "[host\\u202e.test]", "host" },
  { "/pintls/policy/file/error/key-not-utf8",
    "[host.test]\n" GOOD_PINS "mo\xff" "de=pin-only\n", "[host.test] mo\xef\xbf\xbd" "de",
    "unknown key" },
  { "/pintls/policy/file/error/line-not-utf8", "[host.test]\n" GOOD_PINS "\xff\x1b\n",
    NULL, "not a valid policy file" },
};

static void
test_file_error (gconstpointer data)
{
  const FileErrorCase *test = data;
  g_autofree char *path = write_policy (test->contents);
  g_autoptr(GError) error = NULL;
  g_autoptr(PinTlsPolicy) policy = NULL;
  g_autofree char *prefix = g_strconcat (path, ": ", test->where, NULL);

  policy = pin_tls_policy_new_from_file (path, &error);
  remove_policy (path);

  g_assert_null (policy);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_POLICY);
  g_test_message ("%s", error->message);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_assert_null (strchr (error->message, '\x1b'));
  if (test->where != NULL)
    g_assert_true (g_str_has_prefix (error->message, prefix));
  else
    g_assert_true (g_str_has_prefix (error->message, path));
  g_assert_nonnull (strstr (error->message, test->reason));
}

/* Lint --------------------------------------------------------------------- */

static char **
lint (PinTlsPolicy *policy,
      const char   *host,
      GPtrArray    *chain)
{
  g_autoptr(GDateTime) now = utc ("2026-06-01T12:00:00Z");

  return pin_tls_policy_lint (policy, host, chain, now);
}

static gboolean
findings_mention (char *const *findings,
                  const char  *text)
{
  guint i;

  for (i = 0; findings[i] != NULL; i++)
    {
      if (strstr (findings[i], text) != NULL)
        return TRUE;
    }

  return FALSE;
}

static void
test_lint_single_pin (void)
{
  g_autoptr(PinTlsPolicy) policy = pin_tls_policy_new ();
  g_auto(GStrv) findings = NULL;

  add_pattern (policy, "single.test", FALSE, PINS ("leaf1.pem"));
  add_pattern (policy, "backed-up.test", FALSE, PINS ("leaf1.pem", "leaf3.pem"));
  findings = lint (policy, NULL, NULL);

  g_assert_cmpuint (g_strv_length (findings), ==, 1);
  g_assert_true (g_str_has_prefix (findings[0], "[single.test]: only one pin"));
}

static void
test_lint_expiry (void)
{
  g_autoptr(PinTlsPolicy) policy = pin_tls_policy_new ();
  g_auto(GStrv) findings = NULL;
  const struct
  {
    const char *pattern;
    const char *expires;
  } entries[] = {
    { "past.test", "2026-05-31T12:00:00Z" },
    { "soon.test", "2026-06-11T12:00:00Z" },
    { "later.test", "2026-08-01T00:00:00Z" },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (entries); i++)
    {
      g_autoptr(PinTlsPinSet) pins = PINS ("leaf1.pem", "leaf3.pem");
      g_autoptr(PinTlsPolicyEntry) entry = entry_new (entries[i].pattern, pins);
      g_autoptr(GDateTime) expires = utc (entries[i].expires);

      pin_tls_policy_entry_set_expires (entry, expires);
      add_entry (policy, entry);
    }

  findings = lint (policy, NULL, NULL);
  g_assert_cmpuint (g_strv_length (findings), ==, 2);
  g_assert_true (
    g_str_has_prefix (findings[0], "[past.test]: its pins expired on 2026-05-31"));
  g_assert_true (
    g_str_has_prefix (findings[1], "[soon.test]: its pins expire in 10 day(s)"));
}

static void
test_lint_duplicate_pins (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PinTlsPolicy) policy = NULL;
  g_auto(GStrv) findings = NULL;

  /* The same key twice, in two spellings. */
  policy = load_policy ("[host.test]\n"
                        "pins=@leaf1@;@leaf3@;@leaf1-curl@\n"
                        "[other.test]\n"
                        "pins=@leaf3@;@leaf1@\n",
                        &error);
  g_assert_no_error (error);
  findings = lint (policy, NULL, NULL);
  g_assert_cmpuint (g_strv_length (findings), ==, 1);
  g_assert_true (
    g_str_has_prefix (findings[0], "[host.test]: 1 pin(s) given more than once"));
}

typedef struct
{
  const char *path;
  const char *first;
  gboolean first_subdomains;
  const char *second;
  gboolean second_subdomains;
  const char *finding; /* the start of the finding, or NULL for none */
} OverlapCase;

static const OverlapCase overlap_cases[] = {
  { "/pintls/policy/lint/overlap/exact-in-subdomains", "a.example.test", FALSE,
    "example.test", TRUE,
    "[a.example.test] and [example.test] (with subdomains) both cover" },
  { "/pintls/policy/lint/overlap/deep-exact-in-subdomains", "a.b.example.test",
    FALSE, "example.test", TRUE, "[a.b.example.test] and [example.test]" },
  { "/pintls/policy/lint/overlap/subdomains-in-subdomains", "example.test", TRUE,
    "a.example.test", TRUE,
    "[a.example.test] and [example.test] (with subdomains)" },
  { "/pintls/policy/lint/overlap/exact-under-wildcard", "*.example.test", FALSE,
    "a.example.test", FALSE,
    "[a.example.test] and [*.example.test] both cover a.example.test" },
  { "/pintls/policy/lint/overlap/subdomains-under-wildcard", "*.example.test", FALSE,
    "a.example.test", TRUE,
    "[a.example.test] and [*.example.test] both cover a.example.test" },
  { "/pintls/policy/lint/overlap/wildcard-in-subdomains", "*.a.example.test", FALSE,
    "example.test", TRUE,
    "[*.a.example.test] and [example.test] (with subdomains)" },
  { "/pintls/policy/lint/overlap/wildcard-of-subdomains", "*.example.test", FALSE,
    "example.test", TRUE, "[*.example.test] and [example.test]" },
  { "/pintls/policy/lint/overlap/siblings", "a.example.test", TRUE, "b.example.test",
    TRUE, NULL },
  { "/pintls/policy/lint/overlap/not-a-suffix", "notexample.test", FALSE,
    "example.test", TRUE, NULL },
  { "/pintls/policy/lint/overlap/wildcard-not-a-suffix", "*.notexample.test", FALSE,
    "example.test", TRUE, NULL },
  { "/pintls/policy/lint/overlap/parent-of-exact", "example.test", FALSE,
    "a.example.test", FALSE, NULL },
  { "/pintls/policy/lint/overlap/two-labels-below-wildcard", "*.example.test", FALSE,
    "a.b.example.test", FALSE, NULL },
  { "/pintls/policy/lint/overlap/wildcard-parent", "*.example.test", FALSE,
    "example.test", FALSE, NULL },
};

static void
test_lint_overlap (gconstpointer data)
{
  const OverlapCase *test = data;
  g_autoptr(PinTlsPolicy) policy = pin_tls_policy_new ();
  g_auto(GStrv) findings = NULL;

  add_pattern (policy, test->first, test->first_subdomains,
               PINS ("leaf1.pem", "leaf3.pem"));
  add_pattern (policy, test->second, test->second_subdomains,
               PINS ("leaf1.pem", "leaf3.pem"));
  findings = lint (policy, NULL, NULL);

  if (test->finding == NULL)
    {
      g_assert_cmpuint (g_strv_length (findings), ==, 0);
      return;
    }

  g_assert_cmpuint (g_strv_length (findings), ==, 1);
  g_test_message ("%s", findings[0]);
  g_assert_true (g_str_has_prefix (findings[0], test->finding));
}

static void
test_lint_chain (void)
{
  g_autoptr(PinTlsPolicy) policy = pin_tls_policy_new ();
  g_autoptr(GPtrArray) leaf1_chain = test_load_der_chain ("leaf1-chain.pem");
  g_autoptr(GPtrArray) decoy_chain =
    load_chain ("leaf2-chain.pem", "intB.pem", NULL);
  g_auto(GStrv) backed_up = NULL;
  g_auto(GStrv) all_deployed = NULL;
  g_auto(GStrv) none_deployed = NULL;
  g_auto(GStrv) decoy = NULL;
  g_auto(GStrv) unpinned = NULL;
  g_autoptr(GPtrArray) garbage_chain =
    g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_auto(GStrv) garbage = NULL;
  g_auto(GStrv) ca_only = NULL;

  g_ptr_array_add (garbage_chain, g_bytes_new_static ("not DER", 7));
  add_pattern (policy, "backup.test", FALSE, PINS ("leaf1.pem", "leaf3.pem"));
  add_pattern (policy, "deployed.test", FALSE, PINS ("leaf1.pem", "intA.pem"));
  add_pattern (policy, "stale.test", FALSE, PINS ("leaf2.pem", "leaf3.pem"));
  add_pattern (policy, "decoy.test", FALSE, PINS ("intB.pem", "leaf3.pem"));

  backed_up = lint (policy, "backup.test", leaf1_chain);
  g_assert_cmpuint (g_strv_length (backed_up), ==, 0);

  all_deployed = lint (policy, "Deployed.Test.", leaf1_chain);
  g_assert_cmpuint (g_strv_length (all_deployed), ==, 1);
  g_assert_true (
    g_str_has_prefix (all_deployed[0], "[deployed.test]: every one of its pins"));

  none_deployed = lint (policy, "stale.test", leaf1_chain);
  g_assert_cmpuint (g_strv_length (none_deployed), ==, 1);
  g_assert_true (
    g_str_has_prefix (none_deployed[0], "[stale.test]: none of its pins"));

  /* A pinned certificate the server merely appends is not deployed. */
  decoy = lint (policy, "decoy.test", decoy_chain);
  g_assert_cmpuint (g_strv_length (decoy), ==, 1);
  g_assert_true (g_str_has_prefix (decoy[0], "[decoy.test]: none of its pins"));

  unpinned = lint (policy, "other.test", leaf1_chain);
  g_assert_true (findings_mention (unpinned, "refuses hosts without one"));

  /* Bytes that are no certificate say so, and nothing about the pins. */
  garbage = lint (policy, "backup.test", garbage_chain);
  g_assert_cmpuint (g_strv_length (garbage), ==, 1);
  g_assert_cmpstr (garbage[0], ==,
                   "[backup.test]: backup.test presented no readable certificate "
                   "chain");

  pin_tls_policy_set_refuse_unpinned (policy, FALSE);
  ca_only = lint (policy, "other.test", leaf1_chain);
  g_assert_cmpuint (g_strv_length (ca_only), ==, 1);
  g_assert_cmpstr (ca_only[0], ==,
                   "other.test: no entry covers it; certificate authorities "
                   "alone vouch for it");
}

/* The database -------------------------------------------------------------- */

static GTlsCertificate *
certificate_chain (const char *file)
{
  g_autofree char *path = test_data_path (file);
  g_autoptr(GError) error = NULL;
  GTlsCertificate *certificate = g_tls_certificate_new_from_file (path, &error);

  g_assert_no_error (error);
  return certificate;
}

static GTlsDatabase *
root_a_database (void)
{
  g_autofree char *path = test_data_path ("rootA.pem");
  g_autoptr(GError) error = NULL;
  GTlsDatabase *database = g_tls_file_database_new (path, &error);

  g_assert_no_error (error);
  return database;
}

static GTlsCertificateFlags
database_verify (GTlsDatabase *database,
                 const char   *chain_file,
                 const char   *purpose,
                 const char   *host,
                 GError      **error)
{
  g_autoptr(GTlsCertificate) chain = certificate_chain (chain_file);
  g_autoptr(GSocketConnectable) identity = NULL;

  if (host != NULL)
    identity = g_network_address_new (host, 443);

  return g_tls_database_verify_chain (database, chain, purpose, identity, NULL,
                                      G_TLS_DATABASE_VERIFY_NONE, NULL, error);
}

#define SERVER G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER

static void
test_database_verify (DecideFixture *fixture,
                      gconstpointer  data)
{
  g_autoptr(GTlsDatabase) trust = root_a_database ();
  g_autoptr(PinTlsDatabase) database = pin_tls_database_new (fixture->policy, trust);
  GTlsDatabase *db = G_TLS_DATABASE (database);
  g_autoptr(PinTlsPinSet) self_pins = PINS ("self.pem", "leaf3.pem");
  g_autoptr(PinTlsPolicyEntry) self_entry = entry_new ("self.test", self_pins);

  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem", "leaf3.pem"));
  pin_tls_policy_entry_set_mode (self_entry, PIN_TLS_MODE_PIN_ONLY);
  add_entry (fixture->policy, self_entry);

  g_assert_true (pin_tls_database_get_policy (database) == fixture->policy);
  g_assert_true (pin_tls_database_get_trust (database) == trust);

  /* The pins and the trust database, both. */
  g_assert_cmpint (database_verify (db, "leaf1-chain.pem", SERVER, "host.test", NULL), ==, 0);
  g_assert_cmpint (database_verify (db, "leaf2-chain.pem", SERVER, "host.test", NULL), ==,
                   G_TLS_CERTIFICATE_GENERIC_ERROR);
  g_assert_cmpint (database_verify (db, "leafB-chain.pem", SERVER, "host.test", NULL) &
                   G_TLS_CERTIFICATE_UNKNOWN_CA, !=, 0);
  g_assert_cmpint (database_verify (db, "other-chain.pem", SERVER, "host.test", NULL) &
                   G_TLS_CERTIFICATE_BAD_IDENTITY, !=, 0);

  /* Pins alone decide for a pin-only entry: neither CA nor name count. */
  g_assert_cmpint (database_verify (db, "self.pem", SERVER, "self.test", NULL), ==, 0);
  g_assert_cmpint (database_verify (db, "leaf1-chain.pem", SERVER, "self.test", NULL), ==,
                   G_TLS_CERTIFICATE_GENERIC_ERROR);

  /* No identity, an invalid one, a host without an entry: refused. */
  g_assert_cmpint (database_verify (db, "leaf1-chain.pem", SERVER, NULL, NULL) &
                   G_TLS_CERTIFICATE_GENERIC_ERROR, !=, 0);
  g_assert_cmpint (database_verify (db, "leaf1-chain.pem", SERVER, "host..test", NULL) &
                   G_TLS_CERTIFICATE_GENERIC_ERROR, !=, 0);
  g_assert_cmpint (database_verify (db, "leaf1-chain.pem", SERVER, "localhost", NULL), ==,
                   G_TLS_CERTIFICATE_GENERIC_ERROR);

  /* Client certificates are not pinned: the trust database decides. */
  g_assert_cmpint (database_verify (db, "leaf2-chain.pem",
                                    G_TLS_DATABASE_PURPOSE_AUTHENTICATE_CLIENT, NULL, NULL),
                   ==, database_verify (trust, "leaf2-chain.pem",
                                        G_TLS_DATABASE_PURPOSE_AUTHENTICATE_CLIENT, NULL,
                                        NULL));

  g_assert_cmpuint (fixture->reports->len, ==, 6);
}

static void
test_database_without_trust (DecideFixture *fixture,
                             gconstpointer  data)
{
  g_autoptr(PinTlsDatabase) database = pin_tls_database_new (fixture->policy, NULL);
  GTlsDatabase *db = G_TLS_DATABASE (database);
  g_autoptr(PinTlsPinSet) self_pins = PINS ("self.pem", "leaf3.pem");
  g_autoptr(PinTlsPolicyEntry) self_entry = entry_new ("self.test", self_pins);

  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem", "leaf3.pem"));
  pin_tls_policy_entry_set_mode (self_entry, PIN_TLS_MODE_PIN_ONLY);
  add_entry (fixture->policy, self_entry);

  g_assert_null (pin_tls_database_get_trust (database));
  g_assert_cmpint (database_verify (db, "leaf1-chain.pem", SERVER, "host.test", NULL) &
                   G_TLS_CERTIFICATE_UNKNOWN_CA, !=, 0);
  g_assert_cmpint (database_verify (db, "self.pem", SERVER, "self.test", NULL), ==, 0);
}

static void
test_database_cancelled (DecideFixture *fixture,
                         gconstpointer  data)
{
  g_autoptr(GTlsDatabase) trust = root_a_database ();
  g_autoptr(PinTlsDatabase) database = pin_tls_database_new (fixture->policy, trust);
  g_autoptr(GTlsCertificate) chain = certificate_chain ("leaf1-chain.pem");
  g_autoptr(GSocketConnectable) identity = g_network_address_new ("host.test", 443);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  GTlsCertificateFlags flags;

  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem", "leaf3.pem"));
  g_cancellable_cancel (cancellable);
  flags = g_tls_database_verify_chain (G_TLS_DATABASE (database), chain, SERVER, identity,
                                       NULL, G_TLS_DATABASE_VERIFY_NONE, cancellable,
                                       &error);

  /* A failed verification has flags, as GIO's callers count on. */
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (flags & G_TLS_CERTIFICATE_GENERIC_ERROR, !=, 0);
}

/* The DER subject name of @certificate, as issuers are looked up by. */
static GByteArray *
raw_subject_dn (GTlsCertificate *certificate)
{
  g_autoptr(GByteArray) der = NULL;
  gnutls_x509_crt_t crt = NULL;
  gnutls_datum_t datum;
  gnutls_datum_t dn = { NULL, 0 };
  GByteArray *result;

  g_object_get (certificate, "certificate", &der, NULL);
  datum.data = der->data;
  datum.size = der->len;
  g_assert_cmpint (gnutls_x509_crt_init (&crt), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_import (crt, &datum, GNUTLS_X509_FMT_DER), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_get_raw_dn (crt, &dn), ==, 0);
  result = g_byte_array_new ();
  g_byte_array_append (result, dn.data, dn.size);
  gnutls_free (dn.data);
  gnutls_x509_crt_deinit (crt);

  return result;
}

/* What a database wrapper must pass on: issuers, certificates by issuer
 * and handles all come from the trust database, and from nowhere without
 * one. */
static void
test_database_lookups (DecideFixture *fixture,
                       gconstpointer  data)
{
  g_autoptr(GTlsDatabase) trust = root_a_database ();
  g_autoptr(PinTlsDatabase) database = pin_tls_database_new (fixture->policy, trust);
  g_autoptr(PinTlsDatabase) untrusting = pin_tls_database_new (fixture->policy, NULL);
  g_autoptr(GTlsCertificate) intermediate = certificate_chain ("intA.pem");
  g_autoptr(GTlsCertificate) root = certificate_chain ("rootA.pem");
  g_autoptr(GTlsCertificate) issuer = NULL;
  g_autoptr(GTlsCertificate) by_handle = NULL;
  g_autoptr(GByteArray) root_dn = NULL;
  g_autofree char *handle = NULL;
  g_autofree char *trust_handle = NULL;
  g_autoptr(GError) error = NULL;
  GTlsDatabase *db = G_TLS_DATABASE (database);
  GTlsDatabase *none = G_TLS_DATABASE (untrusting);
  GList *issued;

  issuer = g_tls_database_lookup_certificate_issuer (db, intermediate, NULL, 0, NULL,
                                                     &error);
  g_assert_no_error (error);
  g_assert_true (g_tls_certificate_is_same (issuer, root));

  root_dn = raw_subject_dn (root);
  issued = g_tls_database_lookup_certificates_issued_by (db, root_dn, NULL, 0, NULL,
                                                         &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_list_length (issued), ==, 1);
  g_assert_true (g_tls_certificate_is_same (issued->data, root));
  g_list_free_full (issued, g_object_unref);

  handle = g_tls_database_create_certificate_handle (db, root);
  trust_handle = g_tls_database_create_certificate_handle (trust, root);
  g_assert_nonnull (handle);
  g_assert_cmpstr (handle, ==, trust_handle);
  by_handle = g_tls_database_lookup_certificate_for_handle (db, handle, NULL, 0, NULL,
                                                            &error);
  g_assert_no_error (error);
  g_assert_true (g_tls_certificate_is_same (by_handle, root));

  g_assert_null (g_tls_database_lookup_certificate_issuer (none, intermediate, NULL, 0,
                                                           NULL, &error));
  g_assert_null (g_tls_database_lookup_certificates_issued_by (none, root_dn, NULL, 0,
                                                               NULL, &error));
  g_assert_null (g_tls_database_create_certificate_handle (none, root));
  g_assert_null (g_tls_database_lookup_certificate_for_handle (none, handle, NULL, 0,
                                                               NULL, &error));
  g_assert_no_error (error);
}

static void
test_database_properties (DecideFixture *fixture,
                          gconstpointer  data)
{
  g_autoptr(GTlsDatabase) trust = root_a_database ();
  g_autoptr(PinTlsDatabase) database = pin_tls_database_new (fixture->policy, trust);
  g_autoptr(PinTlsDatabase) bare = g_object_new (PIN_TLS_TYPE_DATABASE, NULL);
  g_autoptr(PinTlsPolicy) policy = NULL;
  g_autoptr(GTlsDatabase) got_trust = NULL;
  g_autoptr(GError) error = NULL;
  PinTlsPolicy *empty;

  g_object_get (database, "policy", &policy, "trust", &got_trust, NULL);
  g_assert_true (policy == fixture->policy);
  g_assert_true (got_trust == trust);

  /* A database made without a policy, as bindings may make one, has an
   * empty policy of its own, which refuses every server. */
  empty = pin_tls_database_get_policy (bare);
  g_assert_true (PIN_TLS_IS_POLICY (empty));
  g_assert_null (pin_tls_policy_get_entries (empty));
  g_assert_true (pin_tls_policy_get_refuse_unpinned (empty));
  g_assert_null (pin_tls_database_get_trust (bare));
  g_assert_cmpint (database_verify (G_TLS_DATABASE (bare), "self.pem", SERVER,
                                    "self.test", &error), ==,
                   G_TLS_CERTIFICATE_GENERIC_ERROR);
  g_assert_no_error (error);
}

/* Identities other than a host name and port: a socket address gives its
 * port to the report, a service none. */
/* A certificate as an application's own GTlsCertificate subclass may
 * make one: DER bytes (or none) and any issuer, even itself. */
#define TEST_TYPE_BARE_CERTIFICATE (test_bare_certificate_get_type ())
G_DECLARE_FINAL_TYPE (TestBareCertificate, test_bare_certificate, TEST, BARE_CERTIFICATE,
                      GTlsCertificate)

struct _TestBareCertificate
{
  GTlsCertificate parent_instance;
  GByteArray *der;
  GTlsCertificate *issuer;      /* not a reference: it may be the certificate itself */
};

G_DEFINE_TYPE (TestBareCertificate, test_bare_certificate, G_TYPE_TLS_CERTIFICATE)

static void
test_bare_certificate_get_property (GObject    *object,
                                    guint       prop_id,
                                    GValue     *value,
                                    GParamSpec *pspec)
{
  TestBareCertificate *self = TEST_BARE_CERTIFICATE (object);

  /* Every other property keeps its default value. */
  if (g_str_equal (pspec->name, "certificate"))
    g_value_set_boxed (value, self->der);
  else if (g_str_equal (pspec->name, "issuer"))
    g_value_set_object (value, self->issuer);
}

static void
test_bare_certificate_set_property (GObject      *object,
                                    guint         prop_id,
                                    const GValue *value,
                                    GParamSpec   *pspec)
{
  /* GObject sets the construct properties; the tests set the fields. */
}

static void
test_bare_certificate_finalize (GObject *object)
{
  TestBareCertificate *self = TEST_BARE_CERTIFICATE (object);

  g_clear_pointer (&self->der, g_byte_array_unref);
  G_OBJECT_CLASS (test_bare_certificate_parent_class)->finalize (object);
}

static void
test_bare_certificate_class_init (TestBareCertificateClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  g_autofree GParamSpec **properties = NULL;
  guint n_properties;
  guint i;

  object_class->get_property = test_bare_certificate_get_property;
  object_class->set_property = test_bare_certificate_set_property;
  object_class->finalize = test_bare_certificate_finalize;

  /* All of GTlsCertificate's properties are this class's to handle. */
  properties = g_object_class_list_properties (object_class, &n_properties);
  for (i = 0; i < n_properties; i++)
    g_object_class_override_property (object_class, i + 1, properties[i]->name);
}

static void
test_bare_certificate_init (TestBareCertificate *self)
{
}

/* The DER bytes of the first certificate of @file, or no bytes at all. */
static TestBareCertificate *
bare_certificate_new (const char *file)
{
  TestBareCertificate *certificate = g_object_new (TEST_TYPE_BARE_CERTIFICATE, NULL);

  if (file != NULL)
    {
      g_autoptr(GTlsCertificate) real = certificate_chain (file);

      g_object_get (real, "certificate", &certificate->der, NULL);
    }

  return certificate;
}

/* A certificate whose issuer is itself has no end: the database reads a
 * bounded number of links and decides on those. A certificate without
 * DER bytes presents nothing, which no pin matches. */
static void
test_database_unusual_certificates (DecideFixture *fixture,
                                    gconstpointer  data)
{
  g_autoptr(PinTlsDatabase) database = pin_tls_database_new (fixture->policy, NULL);
  g_autoptr(TestBareCertificate) looped = bare_certificate_new ("self.pem");
  g_autoptr(TestBareCertificate) empty = bare_certificate_new (NULL);
  g_autoptr(GSocketConnectable) identity = g_network_address_new ("self.test", 443);
  g_autoptr(PinTlsPinSet) self_pins = PINS ("self.pem", "leaf3.pem");
  g_autoptr(PinTlsPolicyEntry) self_entry = entry_new ("self.test", self_pins);
  GTlsDatabase *db = G_TLS_DATABASE (database);
  const char *const *presented;

  pin_tls_policy_entry_set_mode (self_entry, PIN_TLS_MODE_PIN_ONLY);
  add_entry (fixture->policy, self_entry);
  looped->issuer = G_TLS_CERTIFICATE (looped);

  g_assert_cmpint (g_tls_database_verify_chain (db, G_TLS_CERTIFICATE (looped), SERVER,
                                                identity, NULL, 0, NULL, NULL), ==, 0);
  g_assert_cmpuint (fixture->reports->len, ==, 1);
  presented = pin_tls_report_get_presented_pins (fixture->reports->pdata[0]);
  g_assert_cmpuint (g_strv_length ((char **) presented), ==, PIN_TLS_MAX_CHAIN_LENGTH + 1);
  g_assert_cmpuint (looped->der->len, >, 0);  /* the certificate's own bytes are left alone */

  g_assert_cmpint (g_tls_database_verify_chain (db, G_TLS_CERTIFICATE (empty), SERVER,
                                                identity, NULL, 0, NULL, NULL), ==,
                   G_TLS_CERTIFICATE_GENERIC_ERROR);
}

static void
test_database_identities (DecideFixture *fixture,
                          gconstpointer  data)
{
  g_autoptr(GTlsDatabase) trust = root_a_database ();
  g_autoptr(PinTlsDatabase) database = pin_tls_database_new (fixture->policy, trust);
  g_autoptr(GTlsCertificate) self_signed = certificate_chain ("self.pem");
  g_autoptr(GTlsCertificate) leaf2 = certificate_chain ("leaf2-chain.pem");
  g_autoptr(GSocketAddress) address =
    g_inet_socket_address_new_from_string ("127.0.0.1", 8443);
  g_autoptr(GSocketConnectable) service = g_network_service_new ("https", "tcp",
                                                                 "host.test");
  g_autoptr(PinTlsPinSet) address_pins = PINS ("self.pem", "leaf3.pem");
  g_autoptr(PinTlsPolicyEntry) address_entry = entry_new ("127.0.0.1", address_pins);
  GTlsDatabase *db = G_TLS_DATABASE (database);

  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem", "leaf3.pem"));
  pin_tls_policy_entry_set_mode (address_entry, PIN_TLS_MODE_PIN_ONLY);
  add_entry (fixture->policy, address_entry);

  g_assert_cmpint (g_tls_database_verify_chain (db, self_signed, SERVER,
                                                G_SOCKET_CONNECTABLE (address), NULL,
                                                0, NULL, NULL), ==, 0);
  g_assert_cmpint (g_tls_database_verify_chain (db, leaf2, SERVER, service, NULL, 0,
                                                NULL, NULL), ==,
                   G_TLS_CERTIFICATE_GENERIC_ERROR);

  g_assert_cmpuint (fixture->reports->len, ==, 2);
  g_assert_cmpstr (pin_tls_report_get_host (fixture->reports->pdata[0]), ==, "127.0.0.1");
  g_assert_cmpuint (pin_tls_report_get_port (fixture->reports->pdata[0]), ==, 8443);
  g_assert_cmpint (pin_tls_report_get_verdict (fixture->reports->pdata[0]), ==,
                   PIN_TLS_VERDICT_MATCHED);
  g_assert_cmpstr (pin_tls_report_get_host (fixture->reports->pdata[1]), ==, "host.test");
  g_assert_cmpuint (pin_tls_report_get_port (fixture->reports->pdata[1]), ==, 0);
  g_assert_cmpint (pin_tls_report_get_verdict (fixture->reports->pdata[1]), ==,
                   PIN_TLS_VERDICT_PIN_MISMATCH);
}

static void
verify_done_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTlsCertificateFlags *flags = user_data;
  g_autoptr(GError) error = NULL;

  *flags = g_tls_database_verify_chain_finish (G_TLS_DATABASE (source), result, &error);
  g_assert_no_error (error);
}

/* The asynchronous check, which GTlsDatabase runs in a worker thread,
 * enforces the pins as the synchronous one does, and reports in the
 * creator's context. */
static void
test_database_verify_async (DecideFixture *fixture,
                            gconstpointer  data)
{
  g_autoptr(GTlsDatabase) trust = root_a_database ();
  g_autoptr(PinTlsDatabase) database = pin_tls_database_new (fixture->policy, trust);
  g_autoptr(GSocketConnectable) identity = g_network_address_new ("host.test", 443);
  const char *const chains[] = { "leaf1-chain.pem", "leaf2-chain.pem" };
  const GTlsCertificateFlags expected[] = { 0, G_TLS_CERTIFICATE_GENERIC_ERROR };
  GObject *alive;
  GWeakRef weak;
  guint i;

  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem", "leaf3.pem"));
  for (i = 0; i < G_N_ELEMENTS (chains); i++)
    {
      g_autoptr(GTlsCertificate) chain = certificate_chain (chains[i]);
      GTlsCertificateFlags flags = G_TLS_CERTIFICATE_VALIDATE_ALL + 1;

      g_tls_database_verify_chain_async (G_TLS_DATABASE (database), chain, SERVER,
                                         identity, NULL, 0, NULL, verify_done_cb,
                                         &flags);
      while (flags == G_TLS_CERTIFICATE_VALIDATE_ALL + 1 || fixture->reports->len <= i)
        g_main_context_iteration (NULL, TRUE);
      g_assert_cmpint (flags, ==, expected[i]);
    }

  g_assert_cmpint (pin_tls_report_get_verdict (fixture->reports->pdata[1]), ==,
                   PIN_TLS_VERDICT_PIN_MISMATCH);

  /* The worker thread lets go of its task, and of the database, just after
   * the result is in. */
  g_weak_ref_init (&weak, database);
  g_clear_object (&database);
  while ((alive = g_weak_ref_get (&weak)) != NULL)
    {
      g_object_unref (alive);
      g_thread_yield ();
    }
  g_weak_ref_clear (&weak);
}

typedef struct
{
  GTlsDatabase *database;
  GPtrArray *reports;
  guint reports_seen;
} VerifyThread;

static gpointer
verify_thread (gpointer data)
{
  VerifyThread *thread = data;

  g_assert_cmpint (database_verify (thread->database, "leaf2-chain.pem", SERVER,
                                    "host.test", NULL), ==,
                   G_TLS_CERTIFICATE_GENERIC_ERROR);
  thread->reports_seen = thread->reports->len;
  return NULL;
}

static void
thread_report_cb (PinTlsPolicy *policy,
                  PinTlsReport *report,
                  GThread     **thread)
{
  *thread = g_thread_self ();
}

/* A check made on another thread than the one that created the database,
 * as glib-networking sometimes makes on its handshake thread, reports in
 * the creator's main context, never on the checking thread. */
static void
test_database_reports_on_its_thread (DecideFixture *fixture,
                                     gconstpointer  data)
{
  g_autoptr(GTlsDatabase) trust = root_a_database ();
  g_autoptr(PinTlsDatabase) database = pin_tls_database_new (fixture->policy, trust);
  VerifyThread verify = { G_TLS_DATABASE (database), fixture->reports, 0 };
  GThread *report_thread = NULL;
  GThread *thread;

  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem", "leaf3.pem"));
  g_signal_connect (fixture->policy, "report", G_CALLBACK (thread_report_cb),
                    &report_thread);

  thread = g_thread_new ("verify", verify_thread, &verify);
  g_thread_join (thread);
  g_assert_cmpuint (verify.reports_seen, ==, 0);
  g_assert_cmpuint (fixture->reports->len, ==, 0);

  while (fixture->reports->len == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (report_thread == g_thread_self ());
  g_assert_cmpint (pin_tls_report_get_verdict (fixture->reports->pdata[0]), ==,
                   PIN_TLS_VERDICT_PIN_MISMATCH);

  /* On the creator's thread, the report goes out at once. */
  g_assert_cmpint (database_verify (G_TLS_DATABASE (database), "leaf1-chain.pem", SERVER,
                                    "host.test", NULL), ==, 0);
  g_assert_cmpuint (fixture->reports->len, ==, 2);
  g_assert_false (g_main_context_pending (NULL));
  g_signal_handlers_disconnect_by_data (fixture->policy, &report_thread);
}

/* Arming needs no network: what it does to a connection shows at once. */
static void
test_arm_connection (DecideFixture *fixture,
                     gconstpointer  data)
{
  g_autoptr(GInputStream) input = g_memory_input_stream_new ();
  g_autoptr(GOutputStream) output = g_memory_output_stream_new_resizable ();
  g_autoptr(GIOStream) base = g_simple_io_stream_new (input, output);
  g_autoptr(GSocketConnectable) identity = g_network_address_new ("host.test", 443);
  g_autoptr(GTlsDatabase) trust = root_a_database ();
  g_autoptr(GIOStream) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) again = NULL;
  GTlsDatabase *database;

  connection = g_tls_client_connection_new (base, identity, &error);
  if (connection == NULL)
    {
      g_test_skip_printf ("no TLS backend: %s", error->message);
      return;
    }

  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem", "leaf3.pem"));
  g_tls_connection_set_database (G_TLS_CONNECTION (connection), trust);
  pin_tls_policy_handle_network_event (fixture->policy, G_SOCKET_CLIENT_RESOLVING,
                                       connection);
  g_assert_true (g_tls_connection_get_database (G_TLS_CONNECTION (connection)) == trust);

  pin_tls_policy_handle_network_event (fixture->policy, G_SOCKET_CLIENT_TLS_HANDSHAKING,
                                       connection);
  database = g_tls_connection_get_database (G_TLS_CONNECTION (connection));
  g_assert_true (PIN_TLS_IS_DATABASE (database));
  g_assert_true (pin_tls_database_get_trust (PIN_TLS_DATABASE (database)) == trust);
  g_assert_true (pin_tls_database_get_policy (PIN_TLS_DATABASE (database)) == fixture->policy);

  /* Arming again changes nothing. */
  pin_tls_policy_arm_connection (fixture->policy, G_TLS_CONNECTION (connection));
  g_assert_true (g_tls_connection_get_database (G_TLS_CONNECTION (connection)) == database);

  /* Without a handshake, there is nothing the pins could accept, and the
   * check says so every time. */
  g_assert_false (pin_tls_policy_check_connection (fixture->policy,
                                                   G_TLS_CONNECTION (connection), &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_false (pin_tls_policy_check_connection (fixture->policy,
                                                   G_TLS_CONNECTION (connection), &again));
  g_assert_error (again, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
}

/* Any TLS client connection can be armed, a PinTlsClientConnection too:
 * arming turns its resumption off, and a handshake that fails before any
 * certificate, which notifies peer-certificate without one, is no pin
 * verdict. Another policy than the armed one checks by its own pins. */
static void
test_arm_pintls_connection (DecideFixture *fixture,
                            gconstpointer  data)
{
  g_autoptr(GInputStream) input = g_memory_input_stream_new ();
  g_autoptr(GOutputStream) output = g_memory_output_stream_new_resizable ();
  g_autoptr(GIOStream) base = g_simple_io_stream_new (input, output);
  g_autoptr(GSocketConnectable) identity = g_network_address_new ("host.test", 443);
  g_autoptr(PinTlsPolicy) other = pin_tls_policy_new ();
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  gboolean resumption = TRUE;

  add_pattern (fixture->policy, "host.test", FALSE, PINS ("leaf1.pem", "leaf3.pem"));
  add_pattern (other, "host.test", FALSE, PINS ("leaf2.pem", "leaf3.pem"));
  connection =
    pin_tls_client_connection_new_with_policy (base, identity, fixture->policy, &error);
  g_assert_no_error (error);
  g_object_set (connection, "session-resumption-enabled", TRUE, NULL);

  pin_tls_policy_arm_connection (fixture->policy, G_TLS_CONNECTION (connection));
  g_object_get (connection, "session-resumption-enabled", &resumption, NULL);
  g_assert_false (resumption);

  /* The server's side of the stream is empty: the handshake meets the end
   * of the stream. */
  g_assert_false (g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL,
                                              &error));
  g_assert_nonnull (error);
  g_assert_null (g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (connection)));
  g_assert_false (g_io_stream_is_closed (base));
  g_clear_error (&error);

  g_assert_false (pin_tls_policy_check_connection (other, G_TLS_CONNECTION (connection),
                                                   &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_true (g_io_stream_is_closed (base));
  g_assert_cmpuint (fixture->reports->len, ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  guint i;

  g_test_init (&argc, &argv, NULL);

  for (i = 0; i < G_N_ELEMENTS (match_cases); i++)
    g_test_add_data_func (match_cases[i].path, &match_cases[i], test_match);
  g_test_add_func ("/pintls/policy/match/unpinned-refused", test_match_refused);
  g_test_add_func ("/pintls/policy/match/invalid-host", test_match_invalid_host);

  g_test_add_func ("/pintls/policy/entry/defaults", test_entry_defaults);
  g_test_add_func ("/pintls/policy/entry/expires-in-utc", test_entry_expires_in_utc);
  g_test_add_func ("/pintls/policy/entry/properties", test_entry_properties);
  g_test_add_func ("/pintls/policy/entry/frozen", test_entry_frozen);
  g_test_add_func ("/pintls/policy/refuse-unpinned", test_policy_refuse_unpinned);
  for (i = 0; i < G_N_ELEMENTS (pattern_cases); i++)
    g_test_add_data_func (pattern_cases[i].path, &pattern_cases[i],
                          test_entry_invalid);
  for (i = 0; i < G_N_ELEMENTS (conflict_cases); i++)
    g_test_add_data_func (conflict_cases[i].path, &conflict_cases[i],
                          test_add_conflict);
  g_test_add_func ("/pintls/policy/entries-in-order", test_entries_in_order);

#define ADD_DECIDE(path, data, func) \
  g_test_add (path, DecideFixture, data, decide_setup, func, decide_teardown)

  ADD_DECIDE ("/pintls/policy/decide/match", NULL, test_decide_match);
  ADD_DECIDE ("/pintls/policy/decide/mismatch", NULL, test_decide_mismatch);
  ADD_DECIDE ("/pintls/policy/decide/untrusted", NULL, test_decide_untrusted);
  ADD_DECIDE ("/pintls/policy/decide/pin-only", NULL, test_decide_pin_only);
  ADD_DECIDE ("/pintls/policy/decide/pins-scoped-to-host", NULL,
              test_pins_scoped_to_host);
  ADD_DECIDE ("/pintls/policy/decide/spellings-pinned", NULL, test_spellings_pinned);
  ADD_DECIDE ("/pintls/policy/report-only/mismatch-passes", NULL,
              test_report_only_mismatch);
  g_test_add_data_func ("/pintls/policy/report-only/checks-ca/ca-and-pins",
                        GINT_TO_POINTER (PIN_TLS_MODE_CA_AND_PINS),
                        test_report_only_checks_ca);
  g_test_add_data_func ("/pintls/policy/report-only/checks-ca/pin-only",
                        GINT_TO_POINTER (PIN_TLS_MODE_PIN_ONLY),
                        test_report_only_checks_ca);
  ADD_DECIDE ("/pintls/policy/expiry/before", GINT_TO_POINTER (FALSE),
              test_expiry_before);
  ADD_DECIDE ("/pintls/policy/expiry/before-with-fallback", GINT_TO_POINTER (TRUE),
              test_expiry_before);
  ADD_DECIDE ("/pintls/policy/expiry/after-refuses", NULL,
              test_expiry_after_refuses);
  ADD_DECIDE ("/pintls/policy/expiry/after-falls-back", NULL,
              test_expiry_after_falls_back);
  ADD_DECIDE ("/pintls/policy/expiry/expired-certificate", NULL,
              test_expiry_expired_certificate);
  ADD_DECIDE ("/pintls/policy/unpinned/refused", NULL, test_unpinned_refused);
  ADD_DECIDE ("/pintls/policy/unpinned/ca-only", NULL, test_unpinned_ca_only);
  ADD_DECIDE ("/pintls/policy/decide/rotation", NULL, test_rotation);
  ADD_DECIDE ("/pintls/policy/rule/digest", NULL, test_rule_digest);
  ADD_DECIDE ("/pintls/policy/rule/quiet", NULL, test_rule_quiet);
  ADD_DECIDE ("/pintls/policy/rule/copy", NULL, test_rule_copy);

  g_test_add_func ("/pintls/policy/file/every-setting", test_file_every_setting);
  g_test_add_func ("/pintls/policy/file/date-and-time-without-offset",
                   test_file_date_and_time_without_offset);
  g_test_add_func ("/pintls/policy/file/example", test_file_example);
  g_test_add_func ("/pintls/policy/file/error/missing", test_file_missing);
  for (i = 0; i < G_N_ELEMENTS (file_error_cases); i++)
    g_test_add_data_func (file_error_cases[i].path, &file_error_cases[i],
                          test_file_error);

  g_test_add_func ("/pintls/policy/lint/single-pin", test_lint_single_pin);
  g_test_add_func ("/pintls/policy/lint/expiry", test_lint_expiry);
  g_test_add_func ("/pintls/policy/lint/duplicate-pins", test_lint_duplicate_pins);
  for (i = 0; i < G_N_ELEMENTS (overlap_cases); i++)
    g_test_add_data_func (overlap_cases[i].path, &overlap_cases[i],
                          test_lint_overlap);
  g_test_add_func ("/pintls/policy/lint/chain", test_lint_chain);

  ADD_DECIDE ("/pintls/policy/database/verify", NULL, test_database_verify);
  ADD_DECIDE ("/pintls/policy/database/without-trust", NULL, test_database_without_trust);
  ADD_DECIDE ("/pintls/policy/database/cancelled", NULL, test_database_cancelled);
  ADD_DECIDE ("/pintls/policy/database/lookups", NULL, test_database_lookups);
  ADD_DECIDE ("/pintls/policy/database/properties", NULL, test_database_properties);
  ADD_DECIDE ("/pintls/policy/database/identities", NULL, test_database_identities);
  ADD_DECIDE ("/pintls/policy/database/unusual-certificates", NULL,
              test_database_unusual_certificates);
  ADD_DECIDE ("/pintls/policy/database/verify-async", NULL, test_database_verify_async);
  ADD_DECIDE ("/pintls/policy/database/reports-on-its-thread", NULL,
              test_database_reports_on_its_thread);
  ADD_DECIDE ("/pintls/policy/database/arm-connection", NULL, test_arm_connection);
  ADD_DECIDE ("/pintls/policy/database/arm-pintls-connection", NULL,
              test_arm_pintls_connection);

  return g_test_run ();
}
