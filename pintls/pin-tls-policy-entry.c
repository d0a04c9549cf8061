/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * PinTlsPolicyEntry:
 *
 * The pins and rules for one host pattern of a [class@PinTls.Policy].
 *
 * An entry has a pattern and a pin set, given when it is created, and
 * settings that may be changed until it is added to a policy: from then on
 * it is fixed, since handshakes on other threads read it.
 *
 * ```c
 * g_autoptr(PinTlsPolicyEntry) entry = pin_tls_policy_entry_new ("example.com", pins, &error);
 *
 * pin_tls_policy_entry_set_include_subdomains (entry, TRUE);
 * pin_tls_policy_add_entry (policy, entry, &error);
 * ```
 */

#include "pin-tls-private.h"

#include <string.h>

#include "pin-tls-enum-types.h"

struct _PinTlsPolicyEntry
{
  GObject parent_instance;

  char *pattern; /* normalised: "host" or "*.parent" */
  char *name;    /* the pattern without "*." */
  gboolean wildcard;
  PinTlsPinSet *pins;
  PinTlsMode mode;
  gboolean include_subdomains;
  gboolean report_only;
  GDateTime *expires;   /* UTC, or NULL */
  gboolean fall_back_to_ca;
  guint duplicate_pins; /* pins a policy file listed more than once */
  gboolean frozen;      /* taken by a policy: no more changes */
};

enum
{
  PROP_0,
  PROP_PATTERN,
  PROP_PINS,
  PROP_MODE,
  PROP_INCLUDE_SUBDOMAINS,
  PROP_REPORT_ONLY,
  PROP_EXPIRES,
  PROP_FALL_BACK_TO_CA,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE (PinTlsPolicyEntry, pin_tls_policy_entry, G_TYPE_OBJECT)

static void
pin_tls_policy_entry_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  PinTlsPolicyEntry *self = PIN_TLS_POLICY_ENTRY (object);

  switch (prop_id)
    {
    case PROP_PATTERN:
      g_value_set_string (value, self->pattern);
      break;
    case PROP_PINS:
      g_value_set_object (value, self->pins);
      break;
    case PROP_MODE:
      g_value_set_enum (value, self->mode);
      break;
    case PROP_INCLUDE_SUBDOMAINS:
      g_value_set_boolean (value, self->include_subdomains);
      break;
    case PROP_REPORT_ONLY:
      g_value_set_boolean (value, self->report_only);
      break;
    case PROP_EXPIRES:
      g_value_set_boxed (value, self->expires);
      break;
    case PROP_FALL_BACK_TO_CA:
      g_value_set_boolean (value, self->fall_back_to_ca);
      break;
    /* GCOVR_EXCL_START: GObject only passes the properties installed above */
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
      /* GCOVR_EXCL_STOP */
    }
}

static void
pin_tls_policy_entry_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  PinTlsPolicyEntry *self = PIN_TLS_POLICY_ENTRY (object);

  switch (prop_id)
    {
    case PROP_MODE:
      pin_tls_policy_entry_set_mode (self, g_value_get_enum (value));
      break;
    case PROP_INCLUDE_SUBDOMAINS:
      pin_tls_policy_entry_set_include_subdomains (self,
                                                   g_value_get_boolean (value));
      break;
    case PROP_REPORT_ONLY:
      pin_tls_policy_entry_set_report_only (self, g_value_get_boolean (value));
      break;
    case PROP_EXPIRES:
      pin_tls_policy_entry_set_expires (self, g_value_get_boxed (value));
      break;
    case PROP_FALL_BACK_TO_CA:
      pin_tls_policy_entry_set_fall_back_to_ca (self, g_value_get_boolean (value));
      break;
    /* GCOVR_EXCL_START: GObject only passes the properties installed above */
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
      /* GCOVR_EXCL_STOP */
    }
}

static void
pin_tls_policy_entry_finalize (GObject *object)
{
  PinTlsPolicyEntry *self = PIN_TLS_POLICY_ENTRY (object);

  g_free (self->pattern);
  g_free (self->name);
  g_clear_object (&self->pins);
  g_clear_pointer (&self->expires, g_date_time_unref);

  G_OBJECT_CLASS (pin_tls_policy_entry_parent_class)->finalize (object);
}

static void
pin_tls_policy_entry_class_init (PinTlsPolicyEntryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags flags =
    G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = pin_tls_policy_entry_get_property;
  object_class->set_property = pin_tls_policy_entry_set_property;
  object_class->finalize = pin_tls_policy_entry_finalize;

  /**
   * PinTlsPolicyEntry:pattern:
   *
   * The host pattern, normalised: a host name in lower case with
   * internationalised labels as A-labels, or an IP address, optionally
   * after `*.`.
   */
  props[PROP_PATTERN] = g_param_spec_string (
    "pattern", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * PinTlsPolicyEntry:pins:
   *
   * The pins the hosts of the pattern must match.
   */
  props[PROP_PINS] = g_param_spec_object ("pins", NULL, NULL, PIN_TLS_TYPE_PIN_SET,
                                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * PinTlsPolicyEntry:mode:
   *
   * How the hosts of the pattern are trusted; %PIN_TLS_MODE_CA_AND_PINS
   * unless set otherwise.
   */
  props[PROP_MODE] = g_param_spec_enum ("mode", NULL, NULL, PIN_TLS_TYPE_MODE,
                                        PIN_TLS_MODE_CA_AND_PINS, flags);

  /**
   * PinTlsPolicyEntry:include-subdomains:
   *
   * Whether the entry also covers the subdomains of its host, at any
   * depth. Not allowed on `*.` patterns and IP addresses.
   */
  props[PROP_INCLUDE_SUBDOMAINS] =
    g_param_spec_boolean ("include-subdomains", NULL, NULL, FALSE, flags);

  /**
   * PinTlsPolicyEntry:report-only:
   *
   * Whether a pin mismatch is only reported, through
   * [signal@PinTls.Policy::report], and not enforced. The certificate
   * authority and host name checks then apply in full, whatever
   * [property@PinTls.PolicyEntry:mode] says: a report-only entry never
   * leaves a server unchecked.
   */
  props[PROP_REPORT_ONLY] =
    g_param_spec_boolean ("report-only", NULL, NULL, FALSE, flags);

  /**
   * PinTlsPolicyEntry:expires:
   *
   * When the pins expire, or %NULL, the default, for never. After that a
   * server that presents none of them is refused with
   * %PIN_TLS_ERROR_PINS_EXPIRED rather than %PIN_TLS_ERROR_PIN_MISMATCH,
   * unless [property@PinTls.PolicyEntry:fall-back-to-ca] is set.
   */
  props[PROP_EXPIRES] =
    g_param_spec_boxed ("expires", NULL, NULL, G_TYPE_DATE_TIME, flags);

  /**
   * PinTlsPolicyEntry:fall-back-to-ca:
   *
   * Whether, once the pins have expired, certificate authority validation
   * alone decides. Every connection that falls back is logged, at message
   * level, and reported.
   */
  props[PROP_FALL_BACK_TO_CA] =
    g_param_spec_boolean ("fall-back-to-ca", NULL, NULL, FALSE, flags);

  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
pin_tls_policy_entry_init (PinTlsPolicyEntry *self)
{
  self->mode = PIN_TLS_MODE_CA_AND_PINS;
}

static gboolean
invalid_pattern (const char *pattern,
                 const char *reason,
                 GError    **error)
{
  g_autofree char *shown = _pin_tls_describe_text (pattern);

  g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_POLICY,
               "Invalid host pattern %s: %s", shown, reason);
  return FALSE;
}

/* Refuses what people write when they mean a host: a URL, a host and port.
 * IPv6 addresses hold colons too, and are fine. */
static gboolean
check_not_url (const char *pattern,
               const char *name,
               GError    **error)
{
  if (strstr (name, "://") != NULL || strchr (name, '/') != NULL)
    return invalid_pattern (pattern, "it is a URL; give the host name alone", error);

  if (name[0] == '[')
    return invalid_pattern (pattern, "write an IPv6 address without brackets",
                            error);

  if (strchr (name, ':') != NULL && !g_hostname_is_ip_address (name))
    return invalid_pattern (pattern,
                            "it has a port; a pattern covers every port of "
                            "its hosts",
                            error);

  return TRUE;
}

static gboolean
parse_pattern (PinTlsPolicyEntry *self,
               const char        *pattern,
               GError           **error)
{
  g_autoptr(GError) name_error = NULL;
  const char *name = pattern;

  if (g_str_has_prefix (pattern, "*."))
    {
      self->wildcard = TRUE;
      name = pattern + 2;
    }

  if (!check_not_url (pattern, name, error))
    return FALSE;
  if (strchr (name, '*') != NULL)
    return invalid_pattern (pattern,
                            "“*” may only be the whole first label, as in "
                            "*.example.com",
                            error);

  self->name = _pin_tls_normalize_host_name (name, &name_error);
  if (self->name == NULL)
    return invalid_pattern (pattern, name_error->message, error);

  if (self->wildcard && g_hostname_is_ip_address (self->name))
    return invalid_pattern (pattern, "an IP address has no subdomains", error);

  self->pattern =
    self->wildcard ? g_strconcat ("*.", self->name, NULL) : g_strdup (self->name);
  return TRUE;
}

/**
 * pin_tls_policy_entry_new:
 * @pattern: a host name or IP address, or `*.` and a host name
 * @pins: the pins the hosts of @pattern must match
 * @error: return location for a #GError
 *
 * Creates an entry that enforces @pins in %PIN_TLS_MODE_CA_AND_PINS mode,
 * never expires and covers no subdomains; change that before adding it to
 * a policy.
 *
 * @pattern may be spelt in any case, with one trailing dot, and with
 * internationalised labels in Unicode or as A-labels: it is normalised,
 * as server names are, and compared with them label by label.
 *
 * The error is %PIN_TLS_ERROR_INVALID_POLICY if @pattern is not a host
 * pattern: a URL, a host and port, `*` anywhere but as the whole first
 * label, or an invalid name.
 *
 * Returns: (transfer full): a new entry, or %NULL on error
 */
PinTlsPolicyEntry *
pin_tls_policy_entry_new (const char   *pattern,
                          PinTlsPinSet *pins,
                          GError      **error)
{
  g_autoptr(PinTlsPolicyEntry) self = NULL;

  g_return_val_if_fail (pattern != NULL, NULL);
  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (pins), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_object_new (PIN_TLS_TYPE_POLICY_ENTRY, NULL);
  if (!parse_pattern (self, pattern, error))
    return NULL;

  self->pins = g_object_ref (pins);

  return g_steal_pointer (&self);
}

/**
 * pin_tls_policy_entry_get_pattern:
 * @entry: an entry
 *
 * Gets the [property@PinTls.PolicyEntry:pattern], normalised.
 *
 * Returns: the host pattern
 */
const char *
pin_tls_policy_entry_get_pattern (PinTlsPolicyEntry *entry)
{
  g_return_val_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry), NULL);

  return entry->pattern;
}

/**
 * pin_tls_policy_entry_get_pins:
 * @entry: an entry
 *
 * Gets the [property@PinTls.PolicyEntry:pins].
 *
 * Returns: (transfer none): the pins the hosts of the entry must match
 */
PinTlsPinSet *
pin_tls_policy_entry_get_pins (PinTlsPolicyEntry *entry)
{
  g_return_val_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry), NULL);

  return entry->pins;
}

/**
 * pin_tls_policy_entry_get_mode:
 * @entry: an entry
 *
 * Gets the [property@PinTls.PolicyEntry:mode].
 *
 * Returns: how the hosts of the entry are trusted
 */
PinTlsMode
pin_tls_policy_entry_get_mode (PinTlsPolicyEntry *entry)
{
  g_return_val_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry), PIN_TLS_MODE_CA_AND_PINS);

  return entry->mode;
}

/**
 * pin_tls_policy_entry_set_mode:
 * @entry: an entry not yet added to a policy
 * @mode: how the hosts of the entry are trusted
 *
 * Sets the [property@PinTls.PolicyEntry:mode].
 */
void
pin_tls_policy_entry_set_mode (PinTlsPolicyEntry *entry,
                               PinTlsMode         mode)
{
  g_return_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry));
  g_return_if_fail (!entry->frozen);

  if (entry->mode == mode)
    return;

  entry->mode = mode;
  g_object_notify_by_pspec (G_OBJECT (entry), props[PROP_MODE]);
}

/**
 * pin_tls_policy_entry_get_include_subdomains:
 * @entry: an entry
 *
 * Gets the [property@PinTls.PolicyEntry:include-subdomains].
 *
 * Returns: whether the entry covers the subdomains of its host
 */
gboolean
pin_tls_policy_entry_get_include_subdomains (PinTlsPolicyEntry *entry)
{
  g_return_val_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry), FALSE);

  return entry->include_subdomains;
}

/**
 * pin_tls_policy_entry_set_include_subdomains:
 * @entry: an entry not yet added to a policy
 * @include_subdomains: whether the entry covers the subdomains of its host
 *
 * Sets the [property@PinTls.PolicyEntry:include-subdomains].
 */
void
pin_tls_policy_entry_set_include_subdomains (PinTlsPolicyEntry *entry,
                                             gboolean           include_subdomains)
{
  g_return_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry));
  g_return_if_fail (!entry->frozen);

  include_subdomains = !!include_subdomains;
  if (entry->include_subdomains == include_subdomains)
    return;

  entry->include_subdomains = include_subdomains;
  g_object_notify_by_pspec (G_OBJECT (entry), props[PROP_INCLUDE_SUBDOMAINS]);
}

/**
 * pin_tls_policy_entry_get_report_only:
 * @entry: an entry
 *
 * Gets the [property@PinTls.PolicyEntry:report-only].
 *
 * Returns: whether a mismatch is only reported
 */
gboolean
pin_tls_policy_entry_get_report_only (PinTlsPolicyEntry *entry)
{
  g_return_val_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry), FALSE);

  return entry->report_only;
}

/**
 * pin_tls_policy_entry_set_report_only:
 * @entry: an entry not yet added to a policy
 * @report_only: whether a mismatch is only reported
 *
 * Sets the [property@PinTls.PolicyEntry:report-only].
 */
void
pin_tls_policy_entry_set_report_only (PinTlsPolicyEntry *entry,
                                      gboolean           report_only)
{
  g_return_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry));
  g_return_if_fail (!entry->frozen);

  report_only = !!report_only;
  if (entry->report_only == report_only)
    return;

  entry->report_only = report_only;
  g_object_notify_by_pspec (G_OBJECT (entry), props[PROP_REPORT_ONLY]);
}

/**
 * pin_tls_policy_entry_get_expires:
 * @entry: an entry
 *
 * Gets the [property@PinTls.PolicyEntry:expires].
 *
 * Returns: (transfer none) (nullable): when the pins expire, in UTC, or
 *   %NULL for never
 */
GDateTime *
pin_tls_policy_entry_get_expires (PinTlsPolicyEntry *entry)
{
  g_return_val_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry), NULL);

  return entry->expires;
}

/**
 * pin_tls_policy_entry_set_expires:
 * @entry: an entry not yet added to a policy
 * @expires: (nullable): when the pins expire, or %NULL for never
 *
 * Sets the [property@PinTls.PolicyEntry:expires].
 */
void
pin_tls_policy_entry_set_expires (PinTlsPolicyEntry *entry,
                                  GDateTime         *expires)
{
  g_return_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry));
  g_return_if_fail (!entry->frozen);

  if (entry->expires == NULL && expires == NULL)
    return;

  g_clear_pointer (&entry->expires, g_date_time_unref);
  if (expires != NULL)
    entry->expires = g_date_time_to_utc (expires);

  g_object_notify_by_pspec (G_OBJECT (entry), props[PROP_EXPIRES]);
}

/**
 * pin_tls_policy_entry_get_fall_back_to_ca:
 * @entry: an entry
 *
 * Gets the [property@PinTls.PolicyEntry:fall-back-to-ca].
 *
 * Returns: whether certificate authorities alone decide once the pins
 *   have expired
 */
gboolean
pin_tls_policy_entry_get_fall_back_to_ca (PinTlsPolicyEntry *entry)
{
  g_return_val_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry), FALSE);

  return entry->fall_back_to_ca;
}

/**
 * pin_tls_policy_entry_set_fall_back_to_ca:
 * @entry: an entry not yet added to a policy
 * @fall_back_to_ca: whether certificate authorities alone decide once the
 *   pins have expired
 *
 * Sets the [property@PinTls.PolicyEntry:fall-back-to-ca].
 */
void
pin_tls_policy_entry_set_fall_back_to_ca (PinTlsPolicyEntry *entry,
                                          gboolean           fall_back_to_ca)
{
  g_return_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry));
  g_return_if_fail (!entry->frozen);

  fall_back_to_ca = !!fall_back_to_ca;
  if (entry->fall_back_to_ca == fall_back_to_ca)
    return;

  entry->fall_back_to_ca = fall_back_to_ca;
  g_object_notify_by_pspec (G_OBJECT (entry), props[PROP_FALL_BACK_TO_CA]);
}

/* The pattern without "*.": the host of an exact or include-subdomains
 * entry, the parent of a wildcard one. */
const char *
_pin_tls_policy_entry_get_name (PinTlsPolicyEntry *entry)
{
  return entry->name;
}

gboolean
_pin_tls_policy_entry_is_wildcard (PinTlsPolicyEntry *entry)
{
  return entry->wildcard;
}

/* Checks that the entry's settings go together, before a policy takes it. */
gboolean
_pin_tls_policy_entry_check (PinTlsPolicyEntry *entry,
                             GError           **error)
{
  if (entry->include_subdomains && entry->wildcard)
    return invalid_pattern (entry->pattern,
                            "a “*.” pattern cannot also include "
                            "subdomains; include the subdomains of the parent "
                            "instead",
                            error);

  if (entry->include_subdomains && g_hostname_is_ip_address (entry->name))
    return invalid_pattern (entry->pattern, "an IP address has no subdomains",
                            error);

  return TRUE;
}

/* Fixes the entry once a policy holds it: handshakes on other threads read
 * it from then on. */
void
_pin_tls_policy_entry_freeze (PinTlsPolicyEntry *entry)
{
  entry->frozen = TRUE;
}

guint
_pin_tls_policy_entry_get_duplicate_pins (PinTlsPolicyEntry *entry)
{
  return entry->duplicate_pins;
}

void
_pin_tls_policy_entry_set_duplicate_pins (PinTlsPolicyEntry *entry,
                                          guint              duplicate_pins)
{
  entry->duplicate_pins = duplicate_pins;
}
