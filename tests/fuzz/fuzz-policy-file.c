/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pin_tls_policy_new_from_file() on arbitrary file contents, then what a
 * loaded policy does with the names it is asked about: each entry's own
 * host in other spellings, hosts one and two labels below it, and names
 * that are odd on purpose (trailing dots, upper case, Unicode, IP
 * addresses, empty labels). The entry a lookup finds must agree with the
 * patterns; the rule a handshake would resolve for each host must decide
 * on the test chain, and lint must run, with and without that chain. */

#include "fuzz-common.h"

#include <string.h>

#define MAX_HOSTS 48

static const char *const odd_hosts[] = {
  "host.test",
  "HOST.TEST.",
  "a.cdn.example.test",
  "a.b.cdn.example.test",
  "notexample.test",
  "bücher.example.test",
  "xn--bcher-kva.example.test",
  "127.0.0.1",
  "127.000.000.001",
  "::1",
  "0:0::1",
  "[::1]",
  "::ffff:127.0.0.1",
  "fe80::1%lo",
  "FE80:0::1%lo.",
  ".",
  "..",
  "a..test",
  "*.example.test",
  "example.test:443",
  "-.test",
  "\xff\xfe.test",
  "a\xcc\x8a.test",
  "\xe2\x80\xae.test",
};

/* The test chain of host.test, leaf first, when the fuzzer runs from the
 * source tree (PINTLS_DATA_DIR); empty otherwise. */
static GPtrArray *
test_chain (void)
{
  static GPtrArray *chain;
  g_autofree char *path = NULL;
  gnutls_x509_crt_t *certs = NULL;
  gnutls_datum_t pem = { NULL, 0 };
  const char *data_dir;
  unsigned int n = 0;
  unsigned int i;

  if (chain != NULL)
    return chain;

  chain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  data_dir = g_getenv ("PINTLS_DATA_DIR");
  if (data_dir == NULL)
    return chain;

  path = g_build_filename (data_dir, "certs", "leaf1-chain.pem", NULL);
  g_assert (gnutls_load_file (path, &pem) == 0);
  g_assert (gnutls_x509_crt_list_import2 (&certs, &n, &pem, GNUTLS_X509_FMT_PEM, 0)
            >= 0);
  for (i = 0; i < n; i++)
    {
      gnutls_datum_t der = { NULL, 0 };

      g_assert (gnutls_x509_crt_export2 (certs[i], GNUTLS_X509_FMT_DER, &der) == 0);
      g_ptr_array_add (chain, g_bytes_new (der.data, der.size));
      gnutls_free (der.data);
      gnutls_x509_crt_deinit (certs[i]);
    }
  gnutls_free (certs);
  gnutls_free (pem.data);

  return chain;
}

static gnutls_datum_t *
test_chain_datums (void)
{
  static gnutls_datum_t *datums;

  if (datums == NULL)
    datums = _pin_tls_datums_from_bytes (test_chain ());

  return datums;
}

/* The test hierarchy's root, or an empty trust list. */
static gnutls_x509_trust_list_t
trust_list (void)
{
  static gnutls_x509_trust_list_t list;
  const char *data_dir;
  g_autofree char *root = NULL;

  if (list != NULL)
    return list;

  gnutls_x509_trust_list_init (&list, 0);
  data_dir = g_getenv ("PINTLS_DATA_DIR");
  if (data_dir != NULL)
    {
      root = g_build_filename (data_dir, "certs", "rootA.pem", NULL);
      gnutls_x509_trust_list_add_trust_file (list, root, NULL, GNUTLS_X509_FMT_PEM,
                                             0, 0);
    }

  return list;
}

/* An entry's pins print as strings that parse back to the same set. */
static void
check_entry (PinTlsPolicyEntry *entry)
{
  PinTlsPinSet *pins = pin_tls_policy_entry_get_pins (entry);
  g_auto(GStrv) printed = pin_tls_pin_set_to_strings (pins);
  g_autoptr(PinTlsPinSet) again = NULL;
  const char *pattern = pin_tls_policy_entry_get_pattern (entry);

  g_assert (pattern != NULL && g_str_is_ascii (pattern));
  g_assert (pin_tls_pin_set_get_size (pins) > 0);

  again = pin_tls_pin_set_new ((const char *const *) printed, NULL);
  g_assert (again != NULL && pin_tls_pin_set_equal (pins, again));
}

/* The hosts to look up: each entry's own host in other spellings and the
 * hosts below it, then the odd ones. */
static GPtrArray *
hosts_for (GList *entries)
{
  GPtrArray *hosts = g_ptr_array_new_with_free_func (g_free);
  GList *link;
  guint i;

  for (link = entries; link != NULL && hosts->len < MAX_HOSTS - 8; link = link->next)
    {
      const char *name = _pin_tls_policy_entry_get_name (link->data);

      g_ptr_array_add (hosts, g_strdup (name));
      g_ptr_array_add (hosts, g_strconcat (name, ".", NULL));
      g_ptr_array_add (hosts, g_ascii_strup (name, -1));
      g_ptr_array_add (hosts, g_strconcat ("a.", name, NULL));
      g_ptr_array_add (hosts, g_strconcat ("a.b.", name, NULL));
    }

  for (i = 0; i < G_N_ELEMENTS (odd_hosts); i++)
    g_ptr_array_add (hosts, g_strdup (odd_hosts[i]));

  return hosts;
}

/* @name in upper case, but for the zone of an IPv6 address ("%eth0"),
 * which names an interface as written. */
static char *
upper_case (const char *name)
{
  gsize length = strcspn (name, "%");
  g_autofree char *upper = g_ascii_strup (name, length);

  return g_strconcat (upper, name + length, NULL);
}

/* Spellings of one host find one entry; an entry's own host and, for a
 * "*." entry, a host one label below find an entry. */
static void
check_lookups (PinTlsPolicy *policy,
               GList        *entries)
{
  GList *link;

  for (link = entries; link != NULL; link = link->next)
    {
      const char *name = _pin_tls_policy_entry_get_name (link->data);
      g_autofree char *dotted = g_strconcat (name, ".", NULL);
      g_autofree char *upper = upper_case (name);
      g_autofree char *below = g_strconcat ("a.", name, NULL);
      g_autoptr(PinTlsPolicyEntry) found = NULL;
      g_autoptr(PinTlsPolicyEntry) found_dotted = NULL;
      g_autoptr(PinTlsPolicyEntry) found_upper = NULL;
      g_autoptr(PinTlsPolicyEntry) found_below = NULL;
      g_autoptr(GError) dotted_error = NULL;

      found = pin_tls_policy_lookup (policy, name, NULL);
      found_upper = pin_tls_policy_lookup (policy, upper, NULL);
      g_assert (found_upper == found);

      /* A dot after an IPv6 address is no spelling of it: "::1." is
       * refused, and "fe80::1%eth0." names another zone. */
      found_dotted = pin_tls_policy_lookup (policy, dotted, &dotted_error);
      if (strchr (name, ':') == NULL)
        g_assert (found_dotted == found);
      else if (strchr (name, '%') == NULL)
        g_assert_error (dotted_error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);

      if (_pin_tls_policy_entry_is_wildcard (link->data))
        {
          found_below = pin_tls_policy_lookup (policy, below, NULL);
          g_assert (strlen (below) > 253 || found_below != NULL);
        }
      else
        {
          g_assert (found == link->data);
        }
    }
}

/* What a handshake with @host would enforce, and its decision on the test
 * chain: refused exactly when it says why. */
static void
check_rule (PinTlsPolicy *policy,
            const char   *host)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *described = NULL;
  PinTlsDecision decision = { 0 };
  PinTlsTrust *trust;
  PinTlsRule rule;

  if (!_pin_tls_rule_init_for_policy (&rule, policy, host, &error))
    {
      g_assert (error->domain == PIN_TLS_ERROR || error->domain == G_IO_ERROR);
      return;
    }

  described = _pin_tls_rule_describe (&rule);
  g_assert (described != NULL);

  trust = _pin_tls_trust_new_for_list (trust_list ());
  _pin_tls_rule_decide (&rule, &decision, test_chain_datums (), test_chain ()->len,
                        host, 443, trust);
  g_assert (decision.accepted == (decision.error == NULL));

  _pin_tls_decision_clear (&decision);
  _pin_tls_trust_free (trust);
  _pin_tls_rule_clear (&rule);
}

static void
check_lint (PinTlsPolicy *policy,
            const char   *host,
            GPtrArray    *chain)
{
  g_auto(GStrv) findings = pin_tls_policy_lint (policy, host, chain, NULL);
  guint i;

  g_assert (findings != NULL);
  for (i = 0; findings[i] != NULL; i++)
    g_assert (g_utf8_validate (findings[i], -1, NULL));
}

static void
check_policy (PinTlsPolicy *policy)
{
  GList *entries = pin_tls_policy_get_entries (policy);
  g_autoptr(GPtrArray) hosts = hosts_for (entries);
  GList *link;
  guint i;

  g_assert (entries != NULL);
  for (link = entries; link != NULL; link = link->next)
    check_entry (link->data);
  check_lookups (policy, entries);

  for (i = 0; i < hosts->len; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(PinTlsPolicyEntry) entry =
        pin_tls_policy_lookup (policy, hosts->pdata[i], &error);

      g_assert (entry == NULL || error == NULL);
      g_assert (error == NULL || error->domain == PIN_TLS_ERROR
                || error->domain == G_IO_ERROR);
      check_rule (policy, hosts->pdata[i]);
    }

  check_lint (policy, NULL, NULL);
  check_lint (policy, "host.test", test_chain ());
  check_lint (policy, hosts->pdata[0], test_chain ());

  g_list_free_full (entries, g_object_unref);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(PinTlsPolicy) policy = NULL;
  g_autoptr(GError) error = NULL;
  const char *path;

  fuzz_init ();

  path = fuzz_write_file (data, size);
  policy = pin_tls_policy_new_from_file (path, &error);
  if (policy == NULL)
    {
      g_assert (error != NULL && error->domain == PIN_TLS_ERROR);
      g_assert (g_utf8_validate (error->message, -1, NULL));
      return 0;
    }

  g_assert (error == NULL);
  check_policy (policy);

  return 0;
}
