/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined(__PINTLS_H_INSIDE__) && !defined(PIN_TLS_COMPILATION)
#error "Only <pintls/pintls.h> can be included directly."
#endif

#include <gio/gio.h>

#include <pintls/pin-tls-pin-set.h>
#include <pintls/pin-tls-verify.h>
#include <pintls/pin-tls-version-macros.h>

G_BEGIN_DECLS

/**
 * PinTlsVerdict:
 * @PIN_TLS_VERDICT_MATCHED: the server presented a pinned certificate or
 *   key
 * @PIN_TLS_VERDICT_PIN_MISMATCH: the server presented no pinned
 *   certificate or key
 * @PIN_TLS_VERDICT_PINS_EXPIRED: the server presented no pinned
 *   certificate or key, and the entry's pins had expired
 * @PIN_TLS_VERDICT_UNTRUSTED: the chain did not validate for the server
 *   name against the certificate authorities, or the server presented no
 *   usable certificate; the pins were not what decided
 *
 * What checking a server's chain against a policy entry found, as a
 * [class@PinTls.Report] tells it.
 */
typedef enum
{
  PIN_TLS_VERDICT_MATCHED,
  PIN_TLS_VERDICT_PIN_MISMATCH,
  PIN_TLS_VERDICT_PINS_EXPIRED,
  PIN_TLS_VERDICT_UNTRUSTED,
} PinTlsVerdict;

#define PIN_TLS_TYPE_POLICY_ENTRY (pin_tls_policy_entry_get_type ())

PIN_TLS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (PinTlsPolicyEntry, pin_tls_policy_entry,
                      PIN_TLS, POLICY_ENTRY, GObject)

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPolicyEntry *pin_tls_policy_entry_new (const char   *pattern,
                                             PinTlsPinSet *pins,
                                             GError      **error);

PIN_TLS_AVAILABLE_IN_ALL
const char *pin_tls_policy_entry_get_pattern (PinTlsPolicyEntry *entry);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPinSet *pin_tls_policy_entry_get_pins (PinTlsPolicyEntry *entry);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsMode pin_tls_policy_entry_get_mode (PinTlsPolicyEntry *entry);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_policy_entry_set_mode (PinTlsPolicyEntry *entry,
                                    PinTlsMode         mode);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_policy_entry_get_include_subdomains (PinTlsPolicyEntry *entry);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_policy_entry_set_include_subdomains (PinTlsPolicyEntry *entry,
                                                  gboolean           include_subdomains);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_policy_entry_get_report_only (PinTlsPolicyEntry *entry);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_policy_entry_set_report_only (PinTlsPolicyEntry *entry,
                                           gboolean           report_only);

PIN_TLS_AVAILABLE_IN_ALL
GDateTime *pin_tls_policy_entry_get_expires (PinTlsPolicyEntry *entry);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_policy_entry_set_expires (PinTlsPolicyEntry *entry,
                                       GDateTime         *expires);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_policy_entry_get_fall_back_to_ca (PinTlsPolicyEntry *entry);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_policy_entry_set_fall_back_to_ca (PinTlsPolicyEntry *entry,
                                               gboolean           fall_back_to_ca);

#define PIN_TLS_TYPE_REPORT (pin_tls_report_get_type ())

PIN_TLS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (PinTlsReport, pin_tls_report, PIN_TLS, REPORT, GObject)

PIN_TLS_AVAILABLE_IN_ALL
const char *pin_tls_report_get_host (PinTlsReport *report);

PIN_TLS_AVAILABLE_IN_ALL
guint16 pin_tls_report_get_port (PinTlsReport *report);

PIN_TLS_AVAILABLE_IN_ALL
const char *pin_tls_report_get_pattern (PinTlsReport *report);

PIN_TLS_AVAILABLE_IN_ALL
const char *const *pin_tls_report_get_presented_pins (PinTlsReport *report);

PIN_TLS_AVAILABLE_IN_ALL
const char *const *pin_tls_report_get_configured_pins (PinTlsReport *report);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsMode pin_tls_report_get_mode (PinTlsReport *report);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_report_get_report_only (PinTlsReport *report);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsVerdict pin_tls_report_get_verdict (PinTlsReport *report);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_report_get_refused (PinTlsReport *report);

#define PIN_TLS_TYPE_POLICY (pin_tls_policy_get_type ())

PIN_TLS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (PinTlsPolicy, pin_tls_policy, PIN_TLS, POLICY, GObject)

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPolicy *pin_tls_policy_new (void);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPolicy *pin_tls_policy_new_from_file (const char *path,
                                            GError    **error);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_policy_add_entry (PinTlsPolicy      *policy,
                                   PinTlsPolicyEntry *entry,
                                   GError           **error);

PIN_TLS_AVAILABLE_IN_ALL
GList *pin_tls_policy_get_entries (PinTlsPolicy *policy);

PIN_TLS_AVAILABLE_IN_ALL
gboolean pin_tls_policy_get_refuse_unpinned (PinTlsPolicy *policy);

PIN_TLS_AVAILABLE_IN_ALL
void pin_tls_policy_set_refuse_unpinned (PinTlsPolicy *policy,
                                         gboolean      refuse_unpinned);

PIN_TLS_AVAILABLE_IN_ALL
PinTlsPolicyEntry *pin_tls_policy_lookup (PinTlsPolicy *policy,
                                          const char   *host,
                                          GError      **error);

PIN_TLS_AVAILABLE_IN_ALL
char **pin_tls_policy_lint (PinTlsPolicy *policy,
                            const char   *host,
                            GPtrArray    *chain,
                            GDateTime    *now);

G_END_DECLS
