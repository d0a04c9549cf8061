/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Policy files: a GKeyFile with one group per host pattern and a
 * [Pin Policy] group for what applies to every host. Anything the reader
 * does not understand is an error naming the file, group and key, so that a
 * misspelt key can never silently drop a host's pins. */

#include "pin-tls-private.h"

#include <string.h>

#define POLICY_GROUP "Pin Policy"

static const char *const policy_keys[] = { "unpinned-hosts", NULL };

static const char *const entry_keys[] = {
  "pins", "mode", "include-subdomains", "report-only", "expires", "on-expiry", NULL
};

typedef struct
{
  GKeyFile *file;
  char *shown_path; /* the path as messages show it */
} PolicyFile;

/* An error for the policy file: "FILE: [GROUP] KEY: reason". Group and key
 * names come from the file, and so may the reason: all are shown as valid
 * UTF-8, with the characters that could disturb a terminal escaped. */
static void
set_error (GError          **error,
           const PolicyFile *source,
           const char       *group,
           const char       *key,
           const char       *reason)
{
  g_autofree char *shown_group = group ? _pin_tls_escape_text (group) : NULL;
  g_autofree char *shown_key = key ? _pin_tls_escape_text (key) : NULL;
  g_autofree char *shown_reason = _pin_tls_escape_text (reason);

  if (group == NULL)
    g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_POLICY, "%s: %s",
                 source->shown_path, shown_reason);
  else if (key == NULL)
    g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_POLICY, "%s: [%s]: %s",
                 source->shown_path, shown_group, shown_reason);
  else
    g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_POLICY,
                 "%s: [%s] %s: %s", source->shown_path, shown_group, shown_key,
                 shown_reason);
}

/* Every key must be known, and given once: GKeyFile keeps the last of two
 * values, and merges two groups of the same name, without a word. */
static gboolean
check_keys (const PolicyFile  *source,
            const char        *group,
            const char *const *known,
            GError           **error)
{
  g_auto(GStrv) keys = g_key_file_get_keys (source->file, group, NULL, NULL);
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  guint i;

  for (i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      if (!g_strv_contains (known, keys[i]))
        {
          set_error (error, source, group, keys[i], "unknown key");
          return FALSE;
        }
      if (!g_hash_table_add (seen, keys[i]))
        {
          set_error (error, source, group, keys[i],
                     "given more than once (or the "
                     "group appears twice)");
          return FALSE;
        }
    }

  return TRUE;
}

static gboolean
ends_in_lone_backslash (const char *raw)
{
  gsize length = strlen (raw);
  gsize backslashes = 0;

  while (backslashes < length && raw[length - 1 - backslashes] == '\\')
    backslashes++;

  return backslashes % 2 == 1;
}

/* The value of @key in @group, or NULL in *@value if the key is absent. A
 * value GKeyFile cannot read is an error, never taken for an absent key,
 * which would drop the setting: GKeyFile returns no value for one that is
 * not UTF-8, and part of it for one with a bad escape sequence. */
static gboolean
read_value (const PolicyFile *source,
            const char       *group,
            const char       *key,
            char            **value,
            GError          **error)
{
  g_autoptr(GError) key_error = NULL;
  g_autofree char *raw = g_key_file_get_value (source->file, group, key, NULL);

  /* GLib 2.74 sets its error twice, and warns, when a value with a bad
   * escape sequence also ends in a backslash: refuse those first. */
  if (raw != NULL && ends_in_lone_backslash (raw))
    {
      set_error (error, source, group, key,
                 "the value ends in a lone backslash (write \\\\ for one)");
      return FALSE;
    }

  *value = g_key_file_get_string (source->file, group, key, &key_error);
  if (key_error == NULL
      || g_error_matches (key_error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND))
    return TRUE;

  g_clear_pointer (value, g_free);
  set_error (error, source, group, key, key_error->message);
  return FALSE;
}

/* A value of a choice key, if present: the index of its word in @words,
 * which must be NULL-terminated. */
static gboolean
read_choice (const PolicyFile  *source,
             const char        *group,
             const char        *key,
             const char *const *words,
             guint             *choice,
             GError           **error)
{
  g_autofree char *value = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *reason = NULL;
  guint i;

  if (!read_value (source, group, key, &value, error))
    return FALSE;
  if (value == NULL)
    return TRUE;

  for (i = 0; words[i] != NULL; i++)
    {
      if (g_str_equal (g_strstrip (value), words[i]))
        {
          *choice = i;
          return TRUE;
        }
    }

  expected = g_strjoinv (" or ", (char **) words);
  reason = g_strdup_printf ("“%s” is not one of %s", value, expected);
  set_error (error, source, group, key, reason);
  return FALSE;
}

static gboolean
read_boolean (const PolicyFile *source,
              const char       *group,
              const char       *key,
              gboolean         *value,
              GError          **error)
{
  static const char *const words[] = { "false", "true", NULL };
  guint choice = *value ? 1 : 0;

  if (!read_choice (source, group, key, words, &choice, error))
    return FALSE;

  *value = choice == 1;
  return TRUE;
}

/* Reads an expiry: a date alone means midnight UTC at its start; a date
 * and time is read as ISO 8601, in UTC unless it gives an offset. */
static GDateTime *
parse_expiry (const char *text)
{
  g_autoptr(GTimeZone) utc = g_time_zone_new_utc ();
  g_autoptr(GRegex) date_only = NULL;
  g_autofree char *midnight = NULL;

  date_only = g_regex_new ("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", 0, 0, NULL);
  if (g_regex_match (date_only, text, 0, NULL))
    text = midnight = g_strconcat (text, "T00:00:00Z", NULL);
  else if (strchr (text, 'T') == NULL)
    return NULL;

  return g_date_time_new_from_iso8601 (text, utc);
}

static gboolean
read_expiry (const PolicyFile  *source,
             const char        *group,
             PinTlsPolicyEntry *entry,
             GError           **error)
{
  g_autofree char *value = NULL;
  g_autoptr(GDateTime) expires = NULL;
  g_autofree char *reason = NULL;

  if (!read_value (source, group, "expires", &value, error))
    return FALSE;
  if (value == NULL)
    return TRUE;

  expires = parse_expiry (g_strstrip (value));
  if (expires == NULL)
    {
      reason = g_strdup_printf ("“%s” is not a date: write 2030-01-01 (midnight "
                                "UTC) or 2030-01-01T12:00:00Z",
                                value);
      set_error (error, source, group, "expires", reason);
      return FALSE;
    }

  pin_tls_policy_entry_set_expires (entry, expires);
  return TRUE;
}

/* The pins of an entry, separated by ";" or ","; @n_given counts them as
 * written, so that duplicates can be told. */
static PinTlsPinSet *
read_pins (const PolicyFile *source,
           const char       *group,
           guint            *n_given,
           GError          **error)
{
  g_autofree char *value = NULL;
  const char *pins[] = { NULL, NULL };
  g_autoptr(GError) pin_error = NULL;
  g_auto(GStrv) pieces = NULL;
  PinTlsPinSet *set;
  guint i;

  if (!read_value (source, group, "pins", &value, error))
    return NULL;
  if (value == NULL || *g_strstrip (value) == '\0')
    {
      set_error (error, source, group, "pins", "an entry needs at least one pin");
      return NULL;
    }

  pins[0] = value;
  pieces = g_strsplit_set (value, ";,", -1);
  for (i = 0, *n_given = 0; pieces[i] != NULL; i++)
    *n_given += *g_strstrip (pieces[i]) != '\0';

  set = pin_tls_pin_set_new (pins, &pin_error);
  if (set == NULL)
    set_error (error, source, group, "pins", pin_error->message);

  return set;
}

static gboolean
read_entry_settings (const PolicyFile  *source,
                     const char        *group,
                     PinTlsPolicyEntry *entry,
                     GError           **error)
{
  static const char *const modes[] = { "ca-and-pins", "pin-only", NULL };
  static const char *const on_expiry[] = { "refuse", "fall-back-to-ca", NULL };
  guint mode = 0;
  guint fall_back = 0;
  gboolean include_subdomains = FALSE;
  gboolean report_only = FALSE;

  if (!read_choice (source, group, "mode", modes, &mode, error)
      || !read_choice (source, group, "on-expiry", on_expiry, &fall_back, error)
      || !read_boolean (source, group, "include-subdomains", &include_subdomains,
                        error)
      || !read_boolean (source, group, "report-only", &report_only, error)
      || !read_expiry (source, group, entry, error))
    return FALSE;

  pin_tls_policy_entry_set_mode (entry, mode == 1 ? PIN_TLS_MODE_PIN_ONLY
                                                  : PIN_TLS_MODE_CA_AND_PINS);
  pin_tls_policy_entry_set_fall_back_to_ca (entry, fall_back == 1);
  pin_tls_policy_entry_set_include_subdomains (entry, include_subdomains);
  pin_tls_policy_entry_set_report_only (entry, report_only);

  return TRUE;
}

static gboolean
read_entry (PinTlsPolicy     *policy,
            const PolicyFile *source,
            const char       *group,
            GError          **error)
{
  g_autoptr(PinTlsPinSet) pins = NULL;
  g_autoptr(PinTlsPolicyEntry) entry = NULL;
  g_autoptr(GError) entry_error = NULL;
  guint n_given = 0;

  if (!check_keys (source, group, entry_keys, error))
    return FALSE;

  pins = read_pins (source, group, &n_given, error);
  if (pins == NULL)
    return FALSE;

  entry = pin_tls_policy_entry_new (group, pins, &entry_error);
  if (entry == NULL)
    {
      set_error (error, source, group, NULL, entry_error->message);
      return FALSE;
    }

  _pin_tls_policy_entry_set_duplicate_pins (
    entry, n_given - pin_tls_pin_set_get_size (pins));
  if (!read_entry_settings (source, group, entry, error))
    return FALSE;

  if (!pin_tls_policy_add_entry (policy, entry, &entry_error))
    {
      set_error (error, source, group, NULL, entry_error->message);
      return FALSE;
    }

  return TRUE;
}

static gboolean
read_policy_group (PinTlsPolicy     *policy,
                   const PolicyFile *source,
                   GError          **error)
{
  static const char *const unpinned[] = { "refuse", "ca-only", NULL };
  guint choice = 0;

  if (!check_keys (source, POLICY_GROUP, policy_keys, error)
      || !read_choice (source, POLICY_GROUP, "unpinned-hosts", unpinned, &choice,
                       error))
    return FALSE;

  pin_tls_policy_set_refuse_unpinned (policy, choice == 0);
  return TRUE;
}

static gboolean
load_key_file (const PolicyFile *source,
               const char       *path,
               GError          **error)
{
  g_autoptr(GError) load_error = NULL;
  g_autofree char *reason = NULL;

  /* Translations are kept so that "pins[de]" is seen, and refused. */
  if (g_key_file_load_from_file (source->file, path, G_KEY_FILE_KEEP_TRANSLATIONS,
                                 &load_error))
    return TRUE;

  /* GLib's message may quote a line of the file. */
  reason = _pin_tls_escape_text (load_error->message);
  if (load_error->domain == G_KEY_FILE_ERROR)
    g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_POLICY,
                 "%s: not a valid policy file: %s", source->shown_path, reason);
  else
    g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_FILE,
                 "Cannot read the pin policy “%s”: %s", source->shown_path, reason);

  return FALSE;
}

/* The policy a loaded key file describes. */
static PinTlsPolicy *
read_policy (const PolicyFile *source,
             GError          **error)
{
  g_autoptr(PinTlsPolicy) policy = pin_tls_policy_new ();
  g_auto(GStrv) groups = g_key_file_get_groups (source->file, NULL);
  guint n_entries = 0;
  guint i;

  for (i = 0; groups[i] != NULL; i++)
    {
      gboolean is_policy_group = g_str_equal (groups[i], POLICY_GROUP);

      if (is_policy_group ? !read_policy_group (policy, source, error)
                          : !read_entry (policy, source, groups[i], error))
        return NULL;

      n_entries += !is_policy_group;
    }

  if (n_entries == 0)
    {
      set_error (error, source, NULL, NULL,
                 "the policy has no entries: it would pin no host");
      return NULL;
    }

  return g_steal_pointer (&policy);
}

/**
 * pin_tls_policy_new_from_file:
 * @path: (type filename): a policy file
 * @error: return location for a #GError
 *
 * Loads a policy from a key file (the format of [struct@GLib.KeyFile]).
 * Each group is a host pattern, as [ctor@PinTls.PolicyEntry.new] takes it,
 * and describes one entry; the optional group `[Pin Policy]` holds what
 * applies to every host:
 *
 * ```ini
 * [Pin Policy]
 * # refuse (the default): connections to hosts without an entry fail.
 * # ca-only: certificate authorities alone vouch for them.
 * unpinned-hosts=refuse
 *
 * [api.example.com]
 * # One or more pins, separated by ";", in any syntax PinTlsPinSet accepts.
 * # Always ship a backup pin: a key that is not deployed yet.
 * pins=sha256/9sIXB7AFCxCp9agAXxemtPHN1m66/FkBo8xkhVRAKJY=;sha256/8zltXZdFLnvpK5nfuki0hdDBmaXaDYSnlsJzw41l1+M=
 * # ca-and-pins (the default): the chain must also validate for the name.
 * # pin-only: the pins alone decide, as for a self-signed server.
 * mode=ca-and-pins
 * # Also cover every subdomain, at any depth (default false).
 * include-subdomains=true
 * # Report mismatches through PinTlsPolicy::report without refusing
 * # (default false); certificate authorities then decide.
 * report-only=false
 * # Optional: a date (midnight UTC at its start) or an ISO 8601 date and
 * # time, after which the pins have expired.
 * expires=2030-01-01
 * # After expiry: refuse (the default), with PIN_TLS_ERROR_PINS_EXPIRED,
 * # or fall-back-to-ca, logged each time.
 * on-expiry=refuse
 *
 * [*.cdn.example.com]
 * pins=sha256/zaSeHjf6WQfDAJPnB75sZAJB1VI1PfH7NZ0m1Z+rxrM=;sha256/9sIXB7AFCxCp9agAXxemtPHN1m66/FkBo8xkhVRAKJY=
 * ```
 *
 * An unknown group key, a key given twice, a value that is not one of
 * those listed or that [struct@GLib.KeyFile] cannot read (not UTF-8, a
 * bad escape sequence) and an invalid pattern or pin are all errors: a
 * policy is loaded whole or not at all. Error messages quote the file's
 * names as valid UTF-8, with control and invisible characters escaped. `data/policy.example.ini` in the pintls
 * sources is a commented example, and `pintls lint` checks a policy for
 * mistakes that would break clients later.
 *
 * The error is %PIN_TLS_ERROR_INVALID_FILE if the file cannot be read, and
 * %PIN_TLS_ERROR_INVALID_POLICY, naming the file, group and key, if it is
 * not a valid policy or holds no entry.
 *
 * Returns: (transfer full): the policy, or %NULL on error
 */
PinTlsPolicy *
pin_tls_policy_new_from_file (const char *path,
                              GError    **error)
{
  g_autoptr(GKeyFile) file = NULL;
  g_autofree char *display_name = NULL;
  g_autofree char *shown_path = NULL;
  PolicyFile source;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  file = g_key_file_new ();
  display_name = g_filename_display_name (path);
  shown_path = _pin_tls_escape_text (display_name);
  source.file = file;
  source.shown_path = shown_path;
  if (!load_key_file (&source, path, error))
    return NULL;

  return read_policy (&source, error);
}
