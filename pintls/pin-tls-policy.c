/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * PinTlsPolicy:
 *
 * Pins for the many hosts of a real application.
 *
 * A policy maps host patterns to [class@PinTls.PolicyEntry]s, each with
 * its own pins, trust mode, expiry and enforcement. A pattern is one of:
 *
 * - a host, `api.example.com`, or an IP address, which covers that host
 *   alone;
 * - `*.example.com`, which covers the hosts exactly one label below
 *   `example.com`, such as `a.example.com`, but neither `example.com` nor
 *   `a.b.example.com`;
 * - a host with [property@PinTls.PolicyEntry:include-subdomains], which
 *   covers the host itself and its subdomains at any depth.
 *
 * Server names and patterns are normalised the same way (lower case, one
 * trailing dot removed, internationalised labels as A-labels) and compared
 * label by label, never as strings: `notexample.com` is not a subdomain of
 * `example.com`, and `Example.COM.` is `example.com`.
 *
 * When several entries cover a host, the most specific one applies: the
 * entry naming the host itself, then the `*.` entry of its parent, then
 * the include-subdomains entry of the closest ancestor.
 *
 * A host that no entry covers is refused with
 * %PIN_TLS_ERROR_HOST_NOT_PINNED, so that a misspelt pattern cannot leave
 * a host unpinned without anyone noticing. Clear
 * [property@PinTls.Policy:refuse-unpinned] to let certificate authorities
 * alone vouch for such hosts instead.
 *
 * Each time a handshake checks a server against an entry, the policy emits
 * [signal@PinTls.Policy::report].
 *
 * ```c
 * g_autoptr(PinTlsPolicy) policy = pin_tls_policy_new_from_file ("pins.ini", &error);
 *
 * if (policy != NULL)
 *   g_signal_connect (policy, "report", G_CALLBACK (report_cb), NULL);
 * ```
 *
 * A policy is safe to use from several threads. Entries added while
 * connections are open apply to the handshakes that start afterwards.
 */

#include "pin-tls-private.h"

#include <string.h>

struct _PinTlsPolicy
{
  GObject parent_instance;

  GRWLock lock;
  GPtrArray *entries;     /* PinTlsPolicyEntry, in the order added */
  GHashTable *exact;      /* host -> entry naming it exactly */
  GHashTable *wildcard;   /* parent -> "*.parent" entry */
  GHashTable *subdomains; /* host -> include-subdomains entry */
  int refuse_unpinned;    /* atomic */
  PinTlsNowFunc now_func; /* the clock for expiry; tests replace it */
  gpointer now_data;
};

enum
{
  PROP_0,
  PROP_REFUSE_UNPINNED,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_REPORT,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (PinTlsPolicy, pin_tls_policy, G_TYPE_OBJECT)

static void
pin_tls_policy_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  PinTlsPolicy *self = PIN_TLS_POLICY (object);

  switch (prop_id)
    {
    case PROP_REFUSE_UNPINNED:
      g_value_set_boolean (value, pin_tls_policy_get_refuse_unpinned (self));
      break;
    /* GCOVR_EXCL_START: GObject only passes the properties installed above */
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
      /* GCOVR_EXCL_STOP */
    }
}

static void
pin_tls_policy_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  PinTlsPolicy *self = PIN_TLS_POLICY (object);

  switch (prop_id)
    {
    case PROP_REFUSE_UNPINNED:
      pin_tls_policy_set_refuse_unpinned (self, g_value_get_boolean (value));
      break;
    /* GCOVR_EXCL_START: GObject only passes the properties installed above */
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
      /* GCOVR_EXCL_STOP */
    }
}

static void
pin_tls_policy_finalize (GObject *object)
{
  PinTlsPolicy *self = PIN_TLS_POLICY (object);

  g_hash_table_unref (self->exact);
  g_hash_table_unref (self->wildcard);
  g_hash_table_unref (self->subdomains);
  g_ptr_array_unref (self->entries);
  g_rw_lock_clear (&self->lock);

  G_OBJECT_CLASS (pin_tls_policy_parent_class)->finalize (object);
}

static void
pin_tls_policy_class_init (PinTlsPolicyClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = pin_tls_policy_get_property;
  object_class->set_property = pin_tls_policy_set_property;
  object_class->finalize = pin_tls_policy_finalize;

  /**
   * PinTlsPolicy:refuse-unpinned:
   *
   * Whether connections to hosts that no entry covers are refused, with
   * %PIN_TLS_ERROR_HOST_NOT_PINNED. %TRUE by default. When %FALSE, such
   * hosts are not pinned: certificate authorities alone vouch for them,
   * and for the name they are reached by.
   */
  props[PROP_REFUSE_UNPINNED] = g_param_spec_boolean (
    "refuse-unpinned", NULL, NULL, TRUE,
    G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, props);

  /**
   * PinTlsPolicy::report:
   * @policy: the policy
   * @report: what the check found
   *
   * Emitted each time a handshake has checked a server's chain against an
   * entry of @policy, whether the pins matched or not and whether the
   * entry enforces them or only reports on them. Nothing is emitted for
   * hosts that no entry covers.
   *
   * For a [class@PinTls.ClientConnection], the signal is emitted during
   * the handshake, on the thread that runs it or whose main context drives
   * it. For a [class@PinTls.Database], and so for connections of the system
   * TLS backend armed with [method@PinTls.Policy.arm_connection], it is
   * emitted in the main context that was the thread-default one where the
   * database was created (where the connection was armed): directly if the
   * backend checks the certificate on that thread, which glib-networking
   * usually does, otherwise from an idle source attached to that context,
   * soon after the check. A handler must not block.
   *
   * A log line goes out too, in the `pintls` domain: at message level when
   * a report-only entry let a mismatch through and when expired pins fell
   * back to certificate authorities, at debug level otherwise.
   */
  signals[SIGNAL_REPORT] =
    g_signal_new ("report", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                  NULL, NULL, G_TYPE_NONE, 1, PIN_TLS_TYPE_REPORT);
}

static GDateTime *
now_utc (gpointer user_data)
{
  return g_date_time_new_now_utc ();
}

static void
pin_tls_policy_init (PinTlsPolicy *self)
{
  g_rw_lock_init (&self->lock);
  self->entries = g_ptr_array_new_with_free_func (g_object_unref);
  self->exact = g_hash_table_new (g_str_hash, g_str_equal);
  self->wildcard = g_hash_table_new (g_str_hash, g_str_equal);
  self->subdomains = g_hash_table_new (g_str_hash, g_str_equal);
  self->refuse_unpinned = TRUE;
  self->now_func = now_utc;
}

/**
 * pin_tls_policy_new:
 *
 * Creates an empty policy: until entries are added, it refuses every
 * host.
 *
 * Returns: (transfer full): a new policy
 */
PinTlsPolicy *
pin_tls_policy_new (void)
{
  return g_object_new (PIN_TLS_TYPE_POLICY, NULL);
}

static GHashTable *
table_for (PinTlsPolicy      *self,
           PinTlsPolicyEntry *entry)
{
  if (_pin_tls_policy_entry_is_wildcard (entry))
    return self->wildcard;

  return pin_tls_policy_entry_get_include_subdomains (entry) ? self->subdomains
                                                             : self->exact;
}

/* Whether an entry already names what @entry names: the same "*." parent,
 * or the same host, exactly or with its subdomains. */
static gboolean
has_entry_like (PinTlsPolicy      *self,
                PinTlsPolicyEntry *entry)
{
  const char *name = _pin_tls_policy_entry_get_name (entry);

  if (_pin_tls_policy_entry_is_wildcard (entry))
    return g_hash_table_contains (self->wildcard, name);

  return g_hash_table_contains (self->exact, name)
         || g_hash_table_contains (self->subdomains, name);
}

/**
 * pin_tls_policy_add_entry:
 * @policy: a policy
 * @entry: an entry; it cannot be changed afterwards
 * @error: return location for a #GError
 *
 * Adds @entry to @policy. Handshakes that start from now on use it.
 *
 * The error is %PIN_TLS_ERROR_INVALID_POLICY if @policy already has an
 * entry for the same pattern (one host cannot have both an exact and an
 * include-subdomains entry), or if @entry includes subdomains of a `*.`
 * pattern or of an IP address.
 *
 * Returns: %TRUE if the entry was added
 */
gboolean
pin_tls_policy_add_entry (PinTlsPolicy      *policy,
                          PinTlsPolicyEntry *entry,
                          GError           **error)
{
  g_autofree char *shown = NULL;
  gboolean added = FALSE;

  g_return_val_if_fail (PIN_TLS_IS_POLICY (policy), FALSE);
  g_return_val_if_fail (PIN_TLS_IS_POLICY_ENTRY (entry), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!_pin_tls_policy_entry_check (entry, error))
    return FALSE;

  g_rw_lock_writer_lock (&policy->lock);
  if (!has_entry_like (policy, entry))
    {
      _pin_tls_policy_entry_freeze (entry);
      g_hash_table_insert (table_for (policy, entry),
                           (char *) _pin_tls_policy_entry_get_name (entry), entry);
      g_ptr_array_add (policy->entries, g_object_ref (entry));
      added = TRUE;
    }
  g_rw_lock_writer_unlock (&policy->lock);

  if (!added)
    {
      shown = _pin_tls_describe_text (pin_tls_policy_entry_get_pattern (entry));
      g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_INVALID_POLICY,
                   "The pin policy already has an entry for %s", shown);
    }

  return added;
}

/**
 * pin_tls_policy_get_entries:
 * @policy: a policy
 *
 * Gets the entries of @policy.
 *
 * Returns: (transfer full) (element-type PinTlsPolicyEntry): the entries,
 *   in the order they were added
 */
GList *
pin_tls_policy_get_entries (PinTlsPolicy *policy)
{
  GList *entries = NULL;
  guint i;

  g_return_val_if_fail (PIN_TLS_IS_POLICY (policy), NULL);

  g_rw_lock_reader_lock (&policy->lock);
  for (i = policy->entries->len; i > 0; i--)
    entries = g_list_prepend (entries, g_object_ref (policy->entries->pdata[i - 1]));
  g_rw_lock_reader_unlock (&policy->lock);

  return entries;
}

/**
 * pin_tls_policy_get_refuse_unpinned:
 * @policy: a policy
 *
 * Gets the [property@PinTls.Policy:refuse-unpinned].
 *
 * Returns: whether hosts that no entry covers are refused
 */
gboolean
pin_tls_policy_get_refuse_unpinned (PinTlsPolicy *policy)
{
  g_return_val_if_fail (PIN_TLS_IS_POLICY (policy), TRUE);

  return g_atomic_int_get (&policy->refuse_unpinned);
}

/**
 * pin_tls_policy_set_refuse_unpinned:
 * @policy: a policy
 * @refuse_unpinned: whether hosts that no entry covers are refused
 *
 * Sets the [property@PinTls.Policy:refuse-unpinned].
 */
void
pin_tls_policy_set_refuse_unpinned (PinTlsPolicy *policy,
                                    gboolean      refuse_unpinned)
{
  g_return_if_fail (PIN_TLS_IS_POLICY (policy));

  refuse_unpinned = !!refuse_unpinned;
  if (g_atomic_int_exchange (&policy->refuse_unpinned, refuse_unpinned)
      != refuse_unpinned)
    g_object_notify_by_pspec (G_OBJECT (policy), props[PROP_REFUSE_UNPINNED]);
}

/* The most specific entry for a normalised host, walking up its labels:
 * the entry naming the host itself, the "*." entry of its parent, then the
 * include-subdomains entry of the closest ancestor. Each table is looked
 * up by a whole name, so no host ever matches by a string suffix. Called
 * with the lock held. */
static PinTlsPolicyEntry *
find_entry (PinTlsPolicy *self,
            const char   *host)
{
  PinTlsPolicyEntry *entry;
  const char *parent;
  const char *ancestor;

  entry = g_hash_table_lookup (self->exact, host);
  if (entry == NULL)
    entry = g_hash_table_lookup (self->subdomains, host);
  if (entry != NULL || g_hostname_is_ip_address (host))
    return entry;

  parent = _pin_tls_name_parent (host);
  if (parent != NULL)
    entry = g_hash_table_lookup (self->wildcard, parent);

  for (ancestor = parent; entry == NULL && ancestor != NULL;
       ancestor = _pin_tls_name_parent (ancestor))
    entry = g_hash_table_lookup (self->subdomains, ancestor);

  return entry;
}

/**
 * pin_tls_policy_lookup:
 * @policy: a policy
 * @host: a host name or IP address, in any spelling
 * @error: return location for a #GError
 *
 * Finds the entry that applies to @host, as handshakes do.
 *
 * The error is %G_IO_ERROR_INVALID_ARGUMENT if @host is not a valid host
 * name, and %PIN_TLS_ERROR_HOST_NOT_PINNED if no entry covers it and
 * @policy refuses such hosts.
 *
 * Returns: (transfer full) (nullable): the entry, or %NULL if no entry
 *   covers @host or on error
 */
PinTlsPolicyEntry *
pin_tls_policy_lookup (PinTlsPolicy *policy,
                       const char   *host,
                       GError      **error)
{
  g_autofree char *name = NULL;
  PinTlsPolicyEntry *entry;

  g_return_val_if_fail (PIN_TLS_IS_POLICY (policy), NULL);
  g_return_val_if_fail (host != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  name = _pin_tls_normalize_host_name (host, error);
  if (name == NULL)
    return NULL;

  g_rw_lock_reader_lock (&policy->lock);
  entry = find_entry (policy, name);
  if (entry != NULL)
    g_object_ref (entry);
  g_rw_lock_reader_unlock (&policy->lock);

  if (entry == NULL && pin_tls_policy_get_refuse_unpinned (policy))
    g_set_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_HOST_NOT_PINNED,
                 "The pin policy has no entry for “%s” and refuses hosts "
                 "without one",
                 name);

  return entry;
}

/* Replaces the clock that decides whether pins have expired; NULL puts the
 * real one back. For tests. */
void
_pin_tls_policy_set_now_func (PinTlsPolicy *policy,
                              PinTlsNowFunc now_func,
                              gpointer      user_data)
{
  policy->now_func = now_func != NULL ? now_func : now_utc;
  policy->now_data = user_data;
}

GDateTime *
_pin_tls_policy_get_now (PinTlsPolicy *policy)
{
  return policy->now_func (policy->now_data);
}

/* Rules ------------------------------------------------------------------ */

static void
rule_compute_digest (PinTlsRule *rule)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *settings = NULL;
  gsize length = sizeof rule->digest;

  settings =
    g_strdup_printf ("pintls rule 1;mode=%d;report-only=%d;expired=%d;"
                     "fall-back-to-ca=%d;pattern=%s;pins=",
                     rule->mode, rule->report_only, rule->expired,
                     rule->fall_back_to_ca, rule->pattern ? rule->pattern : "");
  g_checksum_update (checksum, (const guchar *) settings, -1);
  if (rule->pins != NULL)
    g_checksum_update (checksum, _pin_tls_pin_set_get_digest (rule->pins),
                       PIN_TLS_DIGEST_SIZE);

  g_checksum_get_digest (checksum, rule->digest, &length);
}

/* The rule of a connection given a lone pin set. */
void
_pin_tls_rule_init_for_pins (PinTlsRule   *rule,
                             PinTlsPinSet *pins,
                             PinTlsMode    mode)
{
  memset (rule, 0, sizeof *rule);
  rule->pins = g_object_ref (pins);
  rule->mode = mode;
  rule_compute_digest (rule);
}

/* Resolves what @policy asks of @host, in any spelling, into @rule, as of
 * now: a host the policy refuses fails here, before any handshake. */
gboolean
_pin_tls_rule_init_for_policy (PinTlsRule   *rule,
                               PinTlsPolicy *policy,
                               const char   *host,
                               GError      **error)
{
  g_autoptr(PinTlsPolicyEntry) entry = NULL;
  g_autoptr(GError) lookup_error = NULL;
  g_autoptr(GDateTime) now = NULL;
  GDateTime *expires;

  memset (rule, 0, sizeof *rule);

  entry = pin_tls_policy_lookup (policy, host, &lookup_error);
  if (lookup_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&lookup_error));
      return FALSE;
    }

  rule->policy = g_object_ref (policy);
  rule->mode = PIN_TLS_MODE_CA_AND_PINS;
  if (entry != NULL)
    {
      now = _pin_tls_policy_get_now (policy);
      expires = pin_tls_policy_entry_get_expires (entry);
      rule->pins = g_object_ref (pin_tls_policy_entry_get_pins (entry));
      rule->mode = pin_tls_policy_entry_get_mode (entry);
      rule->report_only = pin_tls_policy_entry_get_report_only (entry);
      rule->expired = expires != NULL && g_date_time_compare (now, expires) >= 0;
      rule->fall_back_to_ca = pin_tls_policy_entry_get_fall_back_to_ca (entry);
      rule->pattern = g_strdup (pin_tls_policy_entry_get_pattern (entry));
      rule->expires = expires != NULL ? g_date_time_ref (expires) : NULL;
    }
  rule_compute_digest (rule);

  return TRUE;
}

/* Copies @src into @dest, which holds nothing. */
void
_pin_tls_rule_copy (PinTlsRule       *dest,
                    const PinTlsRule *src)
{
  *dest = *src;
  if (src->pins != NULL)
    g_object_ref (src->pins);
  if (src->policy != NULL)
    g_object_ref (src->policy);
  dest->pattern = g_strdup (src->pattern);
  if (src->expires != NULL)
    g_date_time_ref (src->expires);
  if (src->report_context != NULL)
    g_main_context_ref (src->report_context);
  if (src->report_thread != NULL)
    g_thread_ref (src->report_thread);
}

/* What the rule enforces, in a few words, for debug messages. */
char *
_pin_tls_rule_describe (const PinTlsRule *rule)
{
  const char *mode = _pin_tls_rule_checks_ca (rule) ? "CA and pins" : "pins only";

  if (rule->pins == NULL)
    return g_strdup ("no pins, certificate authorities alone");
  if (rule->pattern == NULL)
    return g_strdup_printf ("%u pins, %s", pin_tls_pin_set_get_size (rule->pins), mode);

  return g_strdup_printf ("policy entry “%s”, %u pins, %s%s%s", rule->pattern,
                          pin_tls_pin_set_get_size (rule->pins), mode,
                          rule->report_only ? ", report only" : "",
                          rule->expired ? ", expired" : "");
}

/* Makes reports that the rule's decisions make on another thread than
 * @thread go to @context, from an idle source, instead of out on the
 * deciding thread. */
void
_pin_tls_rule_set_report_context (PinTlsRule   *rule,
                                  GMainContext *context,
                                  GThread      *thread)
{
  g_clear_pointer (&rule->report_context, g_main_context_unref);
  g_clear_pointer (&rule->report_thread, g_thread_unref);
  rule->report_context = context != NULL ? g_main_context_ref (context) : NULL;
  rule->report_thread = thread != NULL ? g_thread_ref (thread) : NULL;
}

void
_pin_tls_rule_clear (PinTlsRule *rule)
{
  g_clear_object (&rule->pins);
  g_clear_object (&rule->policy);
  g_clear_pointer (&rule->pattern, g_free);
  g_clear_pointer (&rule->expires, g_date_time_unref);
  g_clear_pointer (&rule->report_context, g_main_context_unref);
  g_clear_pointer (&rule->report_thread, g_thread_unref);
}

/* Whether the pins, when they do not match, refuse the chain. */
static gboolean
rule_enforces_pins (const PinTlsRule *rule)
{
  return rule->pins != NULL && !rule->report_only
         && !(rule->expired && rule->fall_back_to_ca);
}

/* Whether the chain must also validate against certificate authorities:
 * in CA_AND_PINS mode, and whenever the pins do not decide alone, so that
 * unpinned hosts, report-only entries and expired pins that fall back
 * never leave a server unchecked. */
gboolean
_pin_tls_rule_checks_ca (const PinTlsRule *rule)
{
  return rule->mode == PIN_TLS_MODE_CA_AND_PINS || !rule_enforces_pins (rule);
}

static PinTlsVerdict
classify (const PinTlsRule     *rule,
          const PinTlsDecision *decision)
{
  if (decision->path == NULL || decision->ca_errors != 0)
    return PIN_TLS_VERDICT_UNTRUSTED;
  if (decision->pin_matched)
    return PIN_TLS_VERDICT_MATCHED;

  return rule->expired ? PIN_TLS_VERDICT_PINS_EXPIRED : PIN_TLS_VERDICT_PIN_MISMATCH;
}

static void
set_expired_error (const PinTlsRule *rule,
                   PinTlsDecision   *decision)
{
  g_autofree char *date = g_date_time_format_iso8601 (rule->expires);
  g_autofree char *mismatch = g_strdup (decision->error->message);

  g_clear_error (&decision->error);
  g_set_error (&decision->error, PIN_TLS_ERROR, PIN_TLS_ERROR_PINS_EXPIRED,
               "The pins of the policy entry “%s” expired on %s: this client "
               "is outdated and must be updated. %s",
               rule->pattern, date, mismatch);
}

static const char *
verdict_name (PinTlsVerdict verdict)
{
  switch (verdict)
    {
    case PIN_TLS_VERDICT_MATCHED:
      return "a pin matched";
    case PIN_TLS_VERDICT_PIN_MISMATCH:
      return "no pin matched";
    case PIN_TLS_VERDICT_PINS_EXPIRED:
      return "no pin matched, and the pins have expired";
    case PIN_TLS_VERDICT_UNTRUSTED:
    default:
      return "the chain is not trusted";
    }
}

/* The log line for a decision, with @reason the pin verdict's message: at
 * message level when pins that did not match were let through, which
 * someone should see even without a report handler; at debug level
 * otherwise. Part of the text comes from the peer, so never at warning
 * level. */
static void
log_decision (const PinTlsRule     *rule,
              const PinTlsDecision *decision,
              const char           *host,
              guint16               port,
              const char           *reason)
{
  const char *outcome = decision->accepted ? "accepted" : "refused";
  gboolean pins_failed = decision->verdict == PIN_TLS_VERDICT_PIN_MISMATCH
                         || decision->verdict == PIN_TLS_VERDICT_PINS_EXPIRED;

  if (rule->expired && rule->fall_back_to_ca)
    g_message ("The pins of the policy entry “%s” have expired: certificate "
               "authorities alone decided on %s:%u, %s (%s)%s%s",
               rule->pattern, host, port, outcome, verdict_name (decision->verdict),
               reason ? ": " : "", reason ? reason : "");
  else if (rule->report_only && pins_failed)
    g_message ("Pin report for %s:%u, entry “%s”, report only: %s, %s (not "
               "enforced)%s%s",
               host, port, rule->pattern, verdict_name (decision->verdict), outcome,
               reason ? ": " : "", reason ? reason : "");
  else
    g_debug ("Pins for %s:%u, entry “%s”%s: %s, %s%s%s", host, port, rule->pattern,
             rule->report_only ? " (report only)" : "",
             verdict_name (decision->verdict), outcome, reason ? ": " : "",
             reason ? reason : "");
}

/* The decision for one handshake under @rule: the pin verdict on the chain,
 * then what report-only entries and expiry make of it, and the report. A
 * certificate authority or host name failure always stands. */
typedef struct
{
  PinTlsPolicy *policy;
  PinTlsReport *report;
} PendingReport;

static void
pending_report_free (gpointer data)
{
  PendingReport *pending = data;

  g_object_unref (pending->policy);
  g_object_unref (pending->report);
  g_free (pending);
}

static gboolean
deliver_report (gpointer data)
{
  PendingReport *pending = data;

  g_signal_emit (pending->policy, signals[SIGNAL_REPORT], 0, pending->report);
  return G_SOURCE_REMOVE;
}

/* Emits ::report on this thread, or, for a rule whose reports belong to
 * another thread's main context, from an idle source there: the system
 * TLS backend sometimes checks certificates on its handshake thread, where
 * a JavaScript handler, for one, cannot run. */
static void
emit_report (const PinTlsRule *rule,
             PinTlsReport     *report)
{
  g_autoptr(GSource) source = NULL;
  PendingReport *pending;

  if (rule->report_context == NULL || g_thread_self () == rule->report_thread)
    {
      g_signal_emit (rule->policy, signals[SIGNAL_REPORT], 0, report);
      return;
    }

  pending = g_new0 (PendingReport, 1);
  pending->policy = g_object_ref (rule->policy);
  pending->report = g_object_ref (report);
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_static_name (source, "[pintls] pin report");
  g_source_set_callback (source, deliver_report, pending, pending_report_free);
  g_source_attach (source, rule->report_context);
}

void
_pin_tls_rule_decide (const PinTlsRule     *rule,
                      PinTlsDecision       *decision,
                      const gnutls_datum_t *der,
                      guint                 n_certs,
                      const char           *host,
                      guint16               port,
                      PinTlsTrust          *trust)
{
  PinTlsMode mode = _pin_tls_rule_checks_ca (rule) ? PIN_TLS_MODE_CA_AND_PINS
                                                   : PIN_TLS_MODE_PIN_ONLY;
  g_autoptr(PinTlsReport) report = NULL;
  g_autofree char *reason = NULL;

  _pin_tls_decision_compute (decision, rule->pins, der, n_certs, mode, host, trust);
  if (rule->pins == NULL)
    return;

  decision->verdict = classify (rule, decision);
  if (rule->policy == NULL)
    return;

  if (decision->error != NULL)
    reason = g_strdup (decision->error->message);

  if (!decision->pin_matched && !rule_enforces_pins (rule))
    {
      decision->pin_matched = TRUE;
      if (decision->verdict != PIN_TLS_VERDICT_UNTRUSTED)
        {
          g_clear_error (&decision->error);
          decision->accepted = TRUE;
        }
    }
  else if (decision->verdict == PIN_TLS_VERDICT_PINS_EXPIRED)
    {
      set_expired_error (rule, decision);
    }

  log_decision (rule, decision, host, port, reason);
  if (rule->quiet)
    return;

  report = _pin_tls_report_new (rule, decision, der, n_certs, host, port);
  emit_report (rule, report);
}
