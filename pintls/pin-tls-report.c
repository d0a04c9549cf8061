/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * PinTlsReport:
 *
 * What a [class@PinTls.Policy] reports, through
 * [signal@PinTls.Policy::report], each time it has checked a server's
 * chain against one of its entries: the server, what it presented, what
 * the entry configures, and what came of it.
 *
 * A report is the same whether the entry enforces its pins or only
 * reports on them; [method@PinTls.Report.get_refused] tells whether the
 * connection was refused for its pins.
 *
 * ```c
 * static void
 * report_cb (PinTlsPolicy *policy,
 *            PinTlsReport *report,
 *            gpointer      user_data)
 * {
 *   if (pin_tls_report_get_verdict (report) != PIN_TLS_VERDICT_MATCHED)
 *     send_to_monitoring (pin_tls_report_get_host (report),
 *                         pin_tls_report_get_presented_pins (report));
 * }
 * ```
 */

#include "pin-tls-private.h"

struct _PinTlsReport
{
  GObject parent_instance;

  char *host;
  guint16 port;
  char *pattern;
  char **presented_pins;
  char **configured_pins;
  PinTlsMode mode;
  gboolean report_only;
  PinTlsVerdict verdict;
  gboolean refused;
};

G_DEFINE_FINAL_TYPE (PinTlsReport, pin_tls_report, G_TYPE_OBJECT)

static void
pin_tls_report_finalize (GObject *object)
{
  PinTlsReport *self = PIN_TLS_REPORT (object);

  g_free (self->host);
  g_free (self->pattern);
  g_strfreev (self->presented_pins);
  g_strfreev (self->configured_pins);

  G_OBJECT_CLASS (pin_tls_report_parent_class)->finalize (object);
}

static void
pin_tls_report_class_init (PinTlsReportClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = pin_tls_report_finalize;
}

static void
pin_tls_report_init (PinTlsReport *self)
{
}

/* A report of @decision, which @rule made for a server on the chain @der.
 * A chain the verdict could not read has no pins to list. */
PinTlsReport *
_pin_tls_report_new (const PinTlsRule     *rule,
                     const PinTlsDecision *decision,
                     const gnutls_datum_t *der,
                     guint                 n_certs,
                     const char           *host,
                     guint16               port)
{
  PinTlsReport *self = g_object_new (PIN_TLS_TYPE_REPORT, NULL);

  self->host = g_strdup (host);
  self->port = port;
  self->pattern = g_strdup (rule->pattern);
  self->presented_pins = decision->path != NULL
                           ? _pin_tls_presented_pins (der, n_certs)
                           : g_new0 (char *, 1);
  self->configured_pins = pin_tls_pin_set_to_strings (rule->pins);
  self->mode = rule->mode;
  self->report_only = rule->report_only;
  self->verdict = decision->verdict;
  self->refused = !decision->pin_matched;

  return self;
}

/**
 * pin_tls_report_get_host:
 * @report: a report
 *
 * Gets the server's name, normalised, as the handshake used it.
 *
 * Returns: the server's host name or IP address
 */
const char *
pin_tls_report_get_host (PinTlsReport *report)
{
  g_return_val_if_fail (PIN_TLS_IS_REPORT (report), NULL);

  return report->host;
}

/**
 * pin_tls_report_get_port:
 * @report: a report
 *
 * Gets the server's port, as its identity names it.
 *
 * Returns: the port, or 0 if the server identity has none
 */
guint16
pin_tls_report_get_port (PinTlsReport *report)
{
  g_return_val_if_fail (PIN_TLS_IS_REPORT (report), 0);

  return report->port;
}

/**
 * pin_tls_report_get_pattern:
 * @report: a report
 *
 * Gets the pattern of the [class@PinTls.PolicyEntry] that applied.
 *
 * Returns: the entry's pattern
 */
const char *
pin_tls_report_get_pattern (PinTlsReport *report)
{
  g_return_val_if_fail (PIN_TLS_IS_REPORT (report), NULL);

  return report->pattern;
}

/**
 * pin_tls_report_get_presented_pins:
 * @report: a report
 *
 * Gets the public-key pin (`sha256/…`) of every certificate the server
 * presented, in the order it sent them, leaf first, whether or not they
 * were on the issuer path.
 *
 * Returns: (transfer none) (array zero-terminated=1): the pins, empty if
 *   the server presented no usable certificate
 */
const char *const *
pin_tls_report_get_presented_pins (PinTlsReport *report)
{
  g_return_val_if_fail (PIN_TLS_IS_REPORT (report), NULL);

  return (const char *const *) report->presented_pins;
}

/**
 * pin_tls_report_get_configured_pins:
 * @report: a report
 *
 * Gets the pins the entry configures, as
 * [method@PinTls.PinSet.to_strings] spells them.
 *
 * Returns: (transfer none) (array zero-terminated=1): the pins
 */
const char *const *
pin_tls_report_get_configured_pins (PinTlsReport *report)
{
  g_return_val_if_fail (PIN_TLS_IS_REPORT (report), NULL);

  return (const char *const *) report->configured_pins;
}

/**
 * pin_tls_report_get_mode:
 * @report: a report
 *
 * Gets the trust mode of the entry that applied.
 *
 * Returns: the entry's [property@PinTls.PolicyEntry:mode]
 */
PinTlsMode
pin_tls_report_get_mode (PinTlsReport *report)
{
  g_return_val_if_fail (PIN_TLS_IS_REPORT (report), PIN_TLS_MODE_CA_AND_PINS);

  return report->mode;
}

/**
 * pin_tls_report_get_report_only:
 * @report: a report
 *
 * Gets whether the entry that applied only reports on its pins.
 *
 * Returns: the entry's [property@PinTls.PolicyEntry:report-only]
 */
gboolean
pin_tls_report_get_report_only (PinTlsReport *report)
{
  g_return_val_if_fail (PIN_TLS_IS_REPORT (report), FALSE);

  return report->report_only;
}

/**
 * pin_tls_report_get_verdict:
 * @report: a report
 *
 * Gets what the check found.
 *
 * Returns: the verdict
 */
PinTlsVerdict
pin_tls_report_get_verdict (PinTlsReport *report)
{
  g_return_val_if_fail (PIN_TLS_IS_REPORT (report), PIN_TLS_VERDICT_PIN_MISMATCH);

  return report->verdict;
}

/**
 * pin_tls_report_get_refused:
 * @report: a report
 *
 * Gets whether the pins refused the connection: %TRUE for a
 * %PIN_TLS_VERDICT_PIN_MISMATCH or %PIN_TLS_VERDICT_PINS_EXPIRED verdict
 * of an entry that enforces them; %FALSE for a match, for an entry that
 * only reports, and for expired pins that fall back to certificate
 * authorities. A %PIN_TLS_VERDICT_UNTRUSTED chain is refused by the
 * certificate authority check, not by the pins, so this is %FALSE for it
 * unless the pins failed as well.
 *
 * Returns: whether the pins refused the connection
 */
gboolean
pin_tls_report_get_refused (PinTlsReport *report)
{
  g_return_val_if_fail (PIN_TLS_IS_REPORT (report), TRUE);

  return report->refused;
}
