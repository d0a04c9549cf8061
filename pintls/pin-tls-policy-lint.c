/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Lint: the mistakes in a policy that break clients later, when a server
 * rotates its certificate or when a date passes. */

#include "pin-tls-private.h"

#define SOON_EXPIRING_DAYS 30

static void add_finding (GStrvBuilder *findings,
                         const char   *format,
                         ...) G_GNUC_PRINTF (2, 3);

static void
add_finding (GStrvBuilder *findings,
             const char   *format,
             ...)
{
  g_autofree char *line = NULL;
  va_list args;

  va_start (args, format);
  line = g_strdup_vprintf (format, args);
  va_end (args);

  g_strv_builder_add (findings, line);
}

/* Whether the pin @pin matches a certificate on the issuer path of
 * @chain: one a handshake could match it against. */
static gboolean
pin_is_deployed (const char  *pin,
                 GPtrArray   *chain,
                 const guint *path,
                 guint        path_length)
{
  const char *pins[] = { pin, NULL };
  g_autoptr(PinTlsPinSet) single = pin_tls_pin_set_new (pins, NULL);
  guint i;

  for (i = 0; single != NULL && i < path_length; i++)
    {
      if (pin_tls_pin_set_matches_certificate (single, chain->pdata[path[i]], NULL))
        return TRUE;
    }

  return FALSE;
}

/* Compares an entry's pins with the chain its host presents now: if none
 * is on the chain, the policy refuses the server today; if all are, none
 * is a backup for the next key. */
static void
lint_chain (PinTlsPolicyEntry *entry,
            const char        *host,
            GPtrArray         *chain,
            GStrvBuilder      *findings)
{
  const char *pattern = pin_tls_policy_entry_get_pattern (entry);
  g_auto(GStrv) pins =
    pin_tls_pin_set_to_strings (pin_tls_policy_entry_get_pins (entry));
  g_autofree guint *path = NULL;
  guint path_length = 0;
  guint deployed = 0;
  guint i;

  path = pin_tls_find_issuer_path ((GBytes **) chain->pdata, chain->len,
                                   &path_length, NULL);
  if (path == NULL)
    {
      add_finding (findings, "[%s]: %s presented no readable certificate chain",
                   pattern, host);
      return;
    }

  for (i = 0; pins[i] != NULL; i++)
    deployed += pin_is_deployed (pins[i], chain, path, path_length);

  if (deployed == 0)
    add_finding (findings,
                 "[%s]: none of its pins matches the chain %s presents "
                 "now: connections to it would be refused",
                 pattern, host);
  else if (deployed == i && i > 1)
    add_finding (findings,
                 "[%s]: every one of its pins matches the chain %s "
                 "presents now, so none is a backup; add the pin of a key that "
                 "is not deployed yet",
                 pattern, host);
}

static void
lint_backup (PinTlsPolicyEntry *entry,
             GStrvBuilder      *findings)
{
  if (pin_tls_pin_set_get_size (pin_tls_policy_entry_get_pins (entry)) < 2)
    add_finding (findings,
                 "[%s]: only one pin and no backup pin: when that key "
                 "or certificate changes, every client breaks; add the pin of a "
                 "key that is not deployed yet",
                 pin_tls_policy_entry_get_pattern (entry));
}

static void
lint_expiry (PinTlsPolicyEntry *entry,
             GDateTime         *now,
             GStrvBuilder      *findings)
{
  GDateTime *expires = pin_tls_policy_entry_get_expires (entry);
  const char *pattern = pin_tls_policy_entry_get_pattern (entry);
  g_autofree char *date = NULL;
  GTimeSpan left;

  if (expires == NULL)
    return;

  date = g_date_time_format_iso8601 (expires);
  left = g_date_time_difference (expires, now);
  if (left <= 0)
    add_finding (findings, "[%s]: its pins expired on %s; %s", pattern, date,
                 pin_tls_policy_entry_get_fall_back_to_ca (entry)
                   ? "certificate authorities alone decide now"
                   : "servers that present none of them are refused");
  else if (left < SOON_EXPIRING_DAYS * G_TIME_SPAN_DAY)
    add_finding (findings,
                 "[%s]: its pins expire in %" G_GINT64_FORMAT " day(s), on %s",
                 pattern, (left + G_TIME_SPAN_DAY - 1) / G_TIME_SPAN_DAY, date);
}

static void
lint_duplicates (PinTlsPolicyEntry *entry,
                 GStrvBuilder      *findings)
{
  guint duplicates = _pin_tls_policy_entry_get_duplicate_pins (entry);

  if (duplicates > 0)
    add_finding (findings,
                 "[%s]: %u pin(s) given more than once, perhaps in "
                 "different spellings; each counts once",
                 pin_tls_policy_entry_get_pattern (entry), duplicates);
}

/* If @inner and @outer cover a host in common, says which and which entry
 * applies to it. Overlaps are allowed (the most specific entry wins) but
 * easy to get wrong. */
static char *
describe_overlap (PinTlsPolicyEntry *inner,
                  PinTlsPolicyEntry *outer)
{
  const char *inner_name = _pin_tls_policy_entry_get_name (inner);
  const char *outer_name = _pin_tls_policy_entry_get_name (outer);
  const char *inner_pattern = pin_tls_policy_entry_get_pattern (inner);
  const char *outer_pattern = pin_tls_policy_entry_get_pattern (outer);
  gboolean inner_wildcard = _pin_tls_policy_entry_is_wildcard (inner);

  if (!pin_tls_policy_entry_get_include_subdomains (outer))
    {
      /* Only a "*." entry and an exact entry one label below overlap. */
      if (_pin_tls_policy_entry_is_wildcard (outer) && !inner_wildcard
          && g_strcmp0 (_pin_tls_name_parent (inner_name), outer_name) == 0)
        return g_strdup_printf ("[%s] and [%s] both cover %s; [%s] applies to it",
                                inner_pattern, outer_pattern, inner_name,
                                inner_pattern);
      return NULL;
    }

  if (inner_wildcard && _pin_tls_name_is_within (inner_name, outer_name))
    return g_strdup_printf ("[%s] and [%s] (with subdomains) both cover the hosts "
                            "one label below %s; [%s] applies to them",
                            inner_pattern, outer_pattern, inner_name, inner_pattern);

  if (!inner_wildcard && g_strcmp0 (inner_name, outer_name) != 0
      && _pin_tls_name_is_within (inner_name, outer_name))
    return g_strdup_printf ("[%s] and [%s] (with subdomains) both cover %s%s; [%s] "
                            "applies there",
                            inner_pattern, outer_pattern, inner_name,
                            pin_tls_policy_entry_get_include_subdomains (inner)
                              ? " and its subdomains"
                              : "",
                            inner_pattern);

  return NULL;
}

static void
lint_overlaps (GList        *entries,
               GStrvBuilder *findings)
{
  GList *a, *b;

  for (a = entries; a != NULL; a = a->next)
    {
      for (b = entries; b != NULL; b = b->next)
        {
          g_autofree char *overlap = NULL;

          if (a != b)
            overlap = describe_overlap (a->data, b->data);
          if (overlap != NULL)
            g_strv_builder_add (findings, overlap);
        }
    }
}

/* What the host given to lint has to do with the policy. */
static PinTlsPolicyEntry *
lint_host (PinTlsPolicy *policy,
           const char   *host,
           GStrvBuilder *findings)
{
  g_autoptr(GError) error = NULL;
  PinTlsPolicyEntry *entry;

  entry = pin_tls_policy_lookup (policy, host, &error);
  if (error != NULL)
    add_finding (findings, "%s: %s", host, error->message);
  else if (entry == NULL)
    add_finding (findings,
                 "%s: no entry covers it; certificate authorities alone "
                 "vouch for it",
                 host);

  return entry;
}

/**
 * pin_tls_policy_lint:
 * @policy: a policy
 * @host: (nullable): a host whose current chain is @chain
 * @chain: (nullable) (element-type GBytes): the DER certificates @host
 *   presents now, leaf first, as [func@PinTls.fetch_server_chain] returns
 *   them; %NULL or empty if not known
 * @now: (nullable): the time to check expiry against, or %NULL for now
 *
 * Looks for the mistakes in @policy that break clients later:
 *
 * - an entry with a single pin, which leaves no backup for the next key;
 * - given @host and its @chain: an entry none of whose pins is on the
 *   chain (the policy would refuse the server today), or all of whose pins
 *   are (no pin is a backup), and a host that no entry covers;
 * - an entry whose pins have expired, or expire within 30 days;
 * - a pin listed twice in an entry of a policy file;
 * - two patterns that cover some host in common, which is allowed (the
 *   most specific entry applies) but easy to get wrong.
 *
 * `pintls lint` prints these findings.
 *
 * Returns: (transfer full) (array zero-terminated=1): one line of text per
 *   finding, in English, starting with the pattern in brackets; empty if
 *   nothing was found
 */
char **
pin_tls_policy_lint (PinTlsPolicy *policy,
                     const char   *host,
                     GPtrArray    *chain,
                     GDateTime    *now)
{
  g_autoptr(GStrvBuilder) findings = g_strv_builder_new ();
  g_autoptr(PinTlsPolicyEntry) host_entry = NULL;
  g_autoptr(GDateTime) current = NULL;
  GList *entries;
  GList *link;

  g_return_val_if_fail (PIN_TLS_IS_POLICY (policy), NULL);

  /* Some bindings pass an empty array for no array. */
  if (chain != NULL && chain->len == 0)
    chain = NULL;
  g_return_val_if_fail (chain == NULL || host != NULL, NULL);

  current = now != NULL ? g_date_time_ref (now) : _pin_tls_policy_get_now (policy);
  entries = pin_tls_policy_get_entries (policy);
  for (link = entries; link != NULL; link = link->next)
    {
      lint_backup (link->data, findings);
      lint_expiry (link->data, current, findings);
      lint_duplicates (link->data, findings);
    }
  lint_overlaps (entries, findings);

  if (host != NULL)
    host_entry = lint_host (policy, host, findings);
  if (host_entry != NULL && chain != NULL)
    lint_chain (host_entry, host, chain, findings);

  g_list_free_full (entries, g_object_unref);

  return g_strv_builder_end (findings);
}
