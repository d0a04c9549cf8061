/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Pin enforcement installed on a gnutls_session_t. PinTlsClientConnection
 * uses it for its own sessions, and plain GnuTLS programs use it through
 * pin_tls_session_enforce_pins(). */

#include "pin-tls-private.h"

/* The enforcement state travels with the session as the private data of a
 * session-local TLS extension that is never sent: GnuTLS frees it in
 * gnutls_deinit(), and the caller's gnutls_session_set_ptr() slot stays
 * free. The number is in the range TLS reserves for private use. */
#define CHECK_EXTENSION_ID 0xFF5A
#define CHECK_EXTENSION_NAME "pintls-session-check"

struct _PinTlsSessionCheck
{
  PinTlsRule rule;          /* what the handshake enforces */
  char *server_name;
  guint16 port;
  PinTlsTrust *trust;       /* NULL: the trust list of the session's credentials */
  gboolean owner_checks_resumed;
  PinTlsDecisionHook hook;
  gpointer hook_data;
  PinTlsTicketHook ticket_hook;
  gpointer ticket_data;

  gboolean decided;         /* a verdict was reached in this handshake */
  GError *error;            /* why this handshake was refused */
};

static void
session_check_free (gnutls_ext_priv_data_t data)
{
  PinTlsSessionCheck *check = data;

  _pin_tls_rule_clear (&check->rule);
  g_clear_pointer (&check->server_name, g_free);
  g_clear_error (&check->error);
  g_free (check);
}

static int
never_send_cb (gnutls_session_t session,
               gnutls_buffer_t  extension_data)
{
  return 0;
}

/* GCOVR_EXCL_START: GnuTLS refuses a ServerHello extension the client
 * never sent before it would call this; it refuses too, should that
 * change. */
static int
refuse_receive_cb (gnutls_session_t     session,
                   const unsigned char *data,
                   size_t               size)
{
  return GNUTLS_E_RECEIVED_ILLEGAL_EXTENSION;
}
/* GCOVR_EXCL_STOP */

static PinTlsSessionCheck *
get_check (gnutls_session_t session)
{
  gnutls_ext_priv_data_t data = NULL;

  if (gnutls_ext_get_data (session, CHECK_EXTENSION_ID, &data) < 0)
    return NULL;

  return data;
}

static PinTlsTrust *
credentials_trust (gnutls_session_t session)
{
  gnutls_certificate_credentials_t credentials = NULL;
  gnutls_x509_trust_list_t list = NULL;

  /* A session with a server certificate chain to check has certificate
   * credentials. */
  if (gnutls_credentials_get (session, GNUTLS_CRD_CERTIFICATE,
                              (void **) &credentials) < 0)
    return NULL; /* GCOVR_EXCL_LINE */

  gnutls_certificate_get_trust_list (credentials, &list);
  return list != NULL ? _pin_tls_trust_new_for_list (list) : NULL;
}

/* Makes the verdict on the certificates the session holds for its peer and
 * records it. CA errors are the only thing the owner's hook may accept. */
static gboolean
decide (gnutls_session_t    session,
        PinTlsSessionCheck *check)
{
  const gnutls_datum_t *peers;
  unsigned int n_peers = 0;
  PinTlsTrust *own_trust = NULL;
  PinTlsTrust *trust = check->trust;
  PinTlsDecision verdict;
  gboolean accepted;

  peers = gnutls_certificate_get_peers (session, &n_peers);
  if (peers != NULL
      && gnutls_certificate_type_get2 (session, GNUTLS_CTYPE_SERVER) != GNUTLS_CRT_X509)
    n_peers = 0;

  if (trust == NULL && _pin_tls_rule_checks_ca (&check->rule))
    trust = own_trust = credentials_trust (session);

  _pin_tls_rule_decide (&check->rule, &verdict, peers, n_peers, check->server_name,
                        check->port, trust);
  g_clear_pointer (&own_trust, _pin_tls_trust_free);

  accepted = verdict.accepted;
  if (check->hook != NULL && check->hook (&verdict, check->hook_data))
    accepted |= verdict.pin_matched && verdict.ca_errors != 0;

  g_debug ("Session %p: pins for “%s” %s", session,
           check->server_name ? check->server_name : "",
           accepted ? "accepted" : verdict.error->message);

  check->decided = TRUE;
  g_clear_error (&check->error);
  if (!accepted)
    check->error = g_steal_pointer (&verdict.error);
  _pin_tls_decision_clear (&verdict);

  return accepted;
}

/* Refuses the handshake: a fatal bad_certificate alert tells the server why
 * (best effort: the transport may not take it), and the error code stops
 * the handshake. */
static int
refuse (gnutls_session_t session)
{
  gnutls_alert_send (session, GNUTLS_AL_FATAL, GNUTLS_A_BAD_CERTIFICATE);

  return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
}

static int
verify_cb (gnutls_session_t session)
{
  PinTlsSessionCheck *check = get_check (session);

  if (check == NULL || !decide (session, check))
    return refuse (session);

  return 0;
}

static gboolean
resumed_without_chain (gnutls_session_t session)
{
  unsigned int n_peers = 0;

  return gnutls_session_is_resumed (session)
         && gnutls_certificate_get_peers (session, &n_peers) == NULL;
}

/* The backstop after the server's Finished: a handshake must not end
 * without a verdict. The verify function does not run when a session is
 * resumed (from a TLS 1.2 session ID or ticket, or a TLS 1.3 ticket), when
 * no certificate is exchanged, or when someone replaced it; decide here on
 * what the session holds. A resumed TLS 1.3 session only gets its peer
 * chain back once the handshake is over, so it is refused unless the
 * session's owner checks it right after the handshake. Session tickets
 * arriving after a TLS 1.3 handshake go to the owner's ticket hook. */
static int
handshake_hook_cb (gnutls_session_t      session,
                   unsigned int          type,
                   unsigned int          when,
                   unsigned int          incoming,
                   const gnutls_datum_t *message)
{
  PinTlsSessionCheck *check = get_check (session);

  /* The hook is only installed with the check. */
  if (check == NULL)
    return refuse (session); /* GCOVR_EXCL_LINE */

  if (type == GNUTLS_HANDSHAKE_CLIENT_HELLO && !incoming)
    {
      check->decided = FALSE;
      g_clear_error (&check->error);
      return 0;
    }

  if (type == GNUTLS_HANDSHAKE_NEW_SESSION_TICKET && incoming)
    {
      if (check->ticket_hook != NULL)
        check->ticket_hook (check->ticket_data);
      return 0;
    }

  if (type != GNUTLS_HANDSHAKE_FINISHED || !incoming || check->decided)
    return 0;

  if (resumed_without_chain (session))
    {
      if (check->owner_checks_resumed)
        return 0;

      check->decided = TRUE;
      g_set_error_literal (&check->error, G_TLS_ERROR, G_TLS_ERROR_MISC,
                           "A resumed TLS 1.3 session cannot be checked "
                           "against pins during the handshake; do not resume "
                           "sessions on this gnutls_session_t");
      return refuse (session);
    }

  return decide (session, check) ? 0 : refuse (session);
}

/* Makes every handshake on @session decide by @rule, which is copied,
 * for the server @server_name at @port. */
PinTlsSessionCheck *
_pin_tls_session_install (gnutls_session_t  session,
                          const PinTlsRule *rule,
                          const char       *server_name,
                          guint16           port,
                          PinTlsTrust      *trust,
                          gboolean          owner_checks_resumed,
                          GError          **error)
{
  PinTlsSessionCheck *check;
  g_autofree char *name = NULL;
  int ret;

  if (server_name != NULL)
    {
      name = _pin_tls_normalize_host_name (server_name, error);
      if (name == NULL)
        return NULL;
    }
  else if (_pin_tls_rule_checks_ca (rule))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "Checking the server against certificate "
                           "authorities needs the server name");
      return NULL;
    }

  check = get_check (session);
  if (check == NULL)
    {
      ret = gnutls_session_ext_register (session, CHECK_EXTENSION_NAME,
                                         CHECK_EXTENSION_ID, GNUTLS_EXT_TLS,
                                         refuse_receive_cb, never_send_cb,
                                         session_check_free, NULL, NULL,
                                         GNUTLS_EXT_FLAG_CLIENT_HELLO);
      if (ret < 0)
        {
          g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC,
                       "Cannot attach pins to the TLS session: %s",
                       gnutls_strerror (ret));
          return NULL;
        }

      check = g_new0 (PinTlsSessionCheck, 1);
      gnutls_ext_set_data (session, CHECK_EXTENSION_ID, check);
    }

  _pin_tls_rule_clear (&check->rule);
  _pin_tls_rule_copy (&check->rule, rule);
  g_free (check->server_name);
  check->server_name = g_steal_pointer (&name);
  check->port = port;
  check->trust = trust;
  check->owner_checks_resumed = owner_checks_resumed;

  gnutls_session_set_verify_function (session, verify_cb);
  gnutls_handshake_set_hook_function (session, GNUTLS_HANDSHAKE_ANY,
                                      GNUTLS_HOOK_POST, handshake_hook_cb);

  return check;
}

void
_pin_tls_session_check_set_hook (PinTlsSessionCheck *check,
                                 PinTlsDecisionHook  hook,
                                 gpointer            user_data)
{
  check->hook = hook;
  check->hook_data = user_data;
}

void
_pin_tls_session_check_set_ticket_hook (PinTlsSessionCheck *check,
                                        PinTlsTicketHook    hook,
                                        gpointer            user_data)
{
  check->ticket_hook = hook;
  check->ticket_data = user_data;
}

/* For owners that asked to check resumed sessions themselves: call right
 * after a handshake succeeds, before any application data moves. */
gboolean
_pin_tls_session_check_resumed (gnutls_session_t session,
                                GError         **error)
{
  PinTlsSessionCheck *check = get_check (session);

  if (check == NULL)
    {
      g_set_error_literal (error, G_TLS_ERROR, G_TLS_ERROR_MISC,
                           "The TLS session has no pins attached");
      return FALSE;
    }

  if (check->decided)
    return TRUE;

  if (!decide (session, check))
    {
      refuse (session);
      g_propagate_error (error, g_error_copy (check->error));
      return FALSE;
    }

  return TRUE;
}

/* GnuTLS has no name for an alert number it does not know, and the peer
 * chooses the number. */
static GError *
alert_error (gnutls_session_t session)
{
  gnutls_alert_description_t alert = gnutls_alert_get (session);
  const char *name = gnutls_alert_get_name (alert);

  if (name == NULL)
    return g_error_new (G_TLS_ERROR, G_TLS_ERROR_MISC,
                        "Peer sent fatal TLS alert: unknown alert %u", alert);

  return g_error_new (G_TLS_ERROR, G_TLS_ERROR_MISC,
                      "Peer sent fatal TLS alert: %s", name);
}

/* The one place GnuTLS error codes become GErrors. */
GError *
_pin_tls_error_from_gnutls (gnutls_session_t session,
                            int              code,
                            gboolean         handshaking)
{
  switch (code)
    {
    case GNUTLS_E_CERTIFICATE_ERROR:
    case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
      return g_error_new_literal (G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
                                  "Unacceptable TLS certificate");

    case GNUTLS_E_FATAL_ALERT_RECEIVED:
      return alert_error (session);

    case GNUTLS_E_CERTIFICATE_REQUIRED:
    case GNUTLS_E_NO_CERTIFICATE_FOUND:
      return g_error_new_literal (G_TLS_ERROR, G_TLS_ERROR_CERTIFICATE_REQUIRED,
                                  "The server asked for a client certificate");

    case GNUTLS_E_INAPPROPRIATE_FALLBACK:
      return g_error_new_literal (G_TLS_ERROR, G_TLS_ERROR_INAPPROPRIATE_FALLBACK,
                                  "Protocol version downgrade attack detected");

    case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
    case GNUTLS_E_UNEXPECTED_PACKET:
    case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
    case GNUTLS_E_PREMATURE_TERMINATION:
    case GNUTLS_E_SESSION_EOF:
    case GNUTLS_E_PULL_ERROR:
    case GNUTLS_E_PUSH_ERROR:
      if (handshaking)
        return g_error_new (G_TLS_ERROR, G_TLS_ERROR_NOT_TLS,
                            "Peer failed to perform TLS handshake: %s",
                            gnutls_strerror (code));
      if (code == GNUTLS_E_PREMATURE_TERMINATION || code == GNUTLS_E_SESSION_EOF)
        return g_error_new_literal (G_TLS_ERROR, G_TLS_ERROR_EOF,
                                    "TLS connection closed unexpectedly");
      break;

    default:
      break;
    }

  return g_error_new (G_TLS_ERROR, G_TLS_ERROR_MISC, "%s: %s",
                      handshaking ? "Error performing TLS handshake"
                                  : "Error in the TLS connection",
                      gnutls_strerror (code));
}

/**
 * pin_tls_session_enforce_pins: (skip)
 * @session: a client session the caller owns, not yet handshaken
 * @pins: the pins the server must match
 * @mode: how the server is trusted
 * @server_name: (nullable): the server's host name or IP address, as the
 *   session sends it in SNI; required in %PIN_TLS_MODE_CA_AND_PINS mode
 * @error: return location for a #GError
 *
 * Makes every handshake on @session enforce @pins, as
 * [func@PinTls.verify_chain] decides them, so that a plain GnuTLS program
 * gets what [class@PinTls.ClientConnection] does:
 *
 * ```c
 * gnutls_certificate_set_x509_system_trust (credentials);   // CA_AND_PINS only
 * if (!pin_tls_session_enforce_pins (session, pins, PIN_TLS_MODE_PIN_ONLY,
 *                                    "example.com", &error))
 *   goto out;
 * do
 *   ret = gnutls_handshake (session);
 * while (ret < 0 && gnutls_error_is_fatal (ret) == 0);
 * if (ret < 0)
 *   error = pin_tls_session_handshake_error (session, ret);
 * ```
 *
 * On a mismatch the handshake fails with
 * `GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR` inside GnuTLS's verify hook,
 * before the client's Finished message, and a fatal `bad_certificate` alert
 * goes to the server. [func@PinTls.session_handshake_error] then gives the
 * reason as a #GError, %PIN_TLS_ERROR_PIN_MISMATCH for a mismatch.
 *
 * pintls takes the session's verify function and handshake hook function;
 * do not set either afterwards. A handshake in which no verdict was reached
 * (the verify function replaced, no certificate exchanged, a resumed TLS
 * 1.2 session) is decided after the server's Finished message, from the
 * certificates the session holds. A resumed TLS 1.3 session is refused,
 * since GnuTLS restores its certificates only after the handshake: do not
 * resume sessions here, or use [class@PinTls.ClientConnection], which
 * checks them. In %PIN_TLS_MODE_CA_AND_PINS mode the trust anchors are
 * those of the session's certificate credentials.
 *
 * The error is %G_IO_ERROR_INVALID_ARGUMENT for an invalid @server_name or
 * a missing one in %PIN_TLS_MODE_CA_AND_PINS mode.
 *
 * Returns: %TRUE if enforcement is installed
 */
gboolean
pin_tls_session_enforce_pins (gnutls_session_t session,
                              PinTlsPinSet    *pins,
                              PinTlsMode       mode,
                              const char      *server_name,
                              GError         **error)
{
  PinTlsRule rule;
  gboolean installed;

  g_return_val_if_fail (session != NULL, FALSE);
  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (pins), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  _pin_tls_rule_init_for_pins (&rule, pins, mode);
  installed = _pin_tls_session_install (session, &rule, server_name, 0, NULL, FALSE,
                                        error) != NULL;
  _pin_tls_rule_clear (&rule);

  return installed;
}

/**
 * pin_tls_session_handshake_error: (skip)
 * @session: a session pins were enforced on
 * @handshake_result: what the failed `gnutls_handshake()` returned
 *
 * Explains a failed handshake on a session with
 * [func@PinTls.session_enforce_pins]: the pin verdict if pins refused the
 * server (%PIN_TLS_ERROR_PIN_MISMATCH, or %G_TLS_ERROR_BAD_CERTIFICATE for
 * a server that is not trusted or presented no certificate), otherwise the
 * GnuTLS error in the %G_TLS_ERROR domain, as GIO reports it.
 *
 * Returns: (transfer full): the reason for the failure
 */
GError *
pin_tls_session_handshake_error (gnutls_session_t session,
                                 int              handshake_result)
{
  PinTlsSessionCheck *check;

  g_return_val_if_fail (session != NULL, NULL);
  g_return_val_if_fail (handshake_result < 0, NULL);

  check = get_check (session);
  if (check != NULL && check->error != NULL)
    return g_error_copy (check->error);

  return _pin_tls_error_from_gnutls (session, handshake_result, TRUE);
}
