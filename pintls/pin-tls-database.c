/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * PinTlsDatabase:
 *
 * A [class@Gio.TlsDatabase] that enforces a [class@PinTls.Policy] on top of
 * another database's certificate authority decisions.
 *
 * Connections that the system TLS backend (glib-networking) makes, such as
 * those of libsoup's `SoupSession` or of a [class@Gio.SocketClient] with
 * TLS, cannot be [class@PinTls.ClientConnection]s. A database alone does
 * not pin them safely: glib-networking 2.74 resumes TLS 1.3 sessions from
 * a process-wide cache and accepts a resumed session whatever its
 * database says, an [signal@Gio.TlsConnection::accept-certificate] handler
 * can accept a chain the database refused, and validation flags can mask
 * the refusal. [method@PinTls.Policy.arm_connection] installs this database
 * and closes those gaps; [method@PinTls.Policy.handle_network_event] does
 * it from the `event` signal of a socket client or the `network-event`
 * signal of a libsoup message:
 *
 * ```c
 * static void
 * network_event_cb (SoupMessage        *message,
 *                   GSocketClientEvent  event,
 *                   GIOStream          *connection,
 *                   PinTlsPolicy       *policy)
 * {
 *   pin_tls_policy_handle_network_event (policy, event, connection);
 * }
 *
 * static void
 * request_queued_cb (SoupSession  *session,
 *                    SoupMessage  *message,
 *                    PinTlsPolicy *policy)
 * {
 *   g_signal_connect_data (message, "network-event", G_CALLBACK (network_event_cb),
 *                          g_object_ref (policy), (GClosureNotify) g_object_unref, 0);
 * }
 *
 * // Each handler holds a reference: the policy must outlive the session.
 * g_signal_connect_data (session, "request-queued", G_CALLBACK (request_queued_cb),
 *                        g_object_ref (policy), (GClosureNotify) g_object_unref, 0);
 * ```
 *
 * [method@PinTls.Policy.arm_socket_client] does the same for every
 * connection of a [class@Gio.SocketClient]. The "Pinning the system TLS
 * stack" page of this documentation says exactly what is covered.
 */

#include "pin-tls-private.h"

#include <string.h>

struct _PinTlsDatabase
{
  GTlsDatabase parent_instance;

  PinTlsPolicy *policy;
  GTlsDatabase *trust;          /* NULL: no certificate authority is trusted */
  GMainContext *report_context; /* where reports go, from other threads */
  GThread *report_thread;       /* the thread that created the database */
};

enum
{
  PROP_0,
  PROP_POLICY,
  PROP_TRUST,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE (PinTlsDatabase, pin_tls_database, G_TYPE_TLS_DATABASE)

static guint16
identity_port (GSocketConnectable *identity)
{
  if (G_IS_NETWORK_ADDRESS (identity))
    return g_network_address_get_port (G_NETWORK_ADDRESS (identity));

  if (G_IS_INET_SOCKET_ADDRESS (identity))
    return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (identity));

  return 0;
}

/* The policy's decision on @certificate's chain for @identity, with
 * @ca_flags as what @trust_database found. @trust_database also supplies
 * the trust anchor the server did not send, whose pin may match. */
static void
decide (PinTlsPolicy        *policy,
        PinTlsDatabase      *reporter,
        GTlsDatabase        *trust_database,
        GTlsCertificate     *certificate,
        GSocketConnectable  *identity,
        GTlsCertificateFlags ca_flags,
        gboolean             quiet,
        PinTlsDecision      *decision)
{
  g_autofree char *identity_name = NULL;
  g_autofree char *host = NULL;
  g_autoptr(GPtrArray) chain = NULL;
  g_autofree gnutls_datum_t *der = NULL;
  PinTlsTrust *trust;
  PinTlsRule rule;

  memset (decision, 0, sizeof *decision);

  identity_name = identity != NULL ? _pin_tls_identity_host_name (identity) : NULL;
  host = _pin_tls_normalize_host_name (identity_name, &decision->error);
  if (host == NULL
      || !_pin_tls_rule_init_for_policy (&rule, policy, host, &decision->error))
    return;

  rule.quiet = quiet;
  if (reporter != NULL)
    _pin_tls_rule_set_report_context (&rule, reporter->report_context,
                                      reporter->report_thread);
  chain = _pin_tls_certificate_chain_der (certificate);
  der = _pin_tls_datums_from_bytes (chain);
  trust = _pin_tls_trust_new_for_database_result (trust_database, NULL, ca_flags);

  _pin_tls_rule_decide (&rule, decision, der, chain->len, host,
                        identity_port (identity), trust);
  _pin_tls_trust_free (trust);
  _pin_tls_rule_clear (&rule);
}

static GTlsCertificateFlags
pin_tls_database_verify_chain (GTlsDatabase           *database,
                               GTlsCertificate        *chain,
                               const char             *purpose,
                               GSocketConnectable     *identity,
                               GTlsInteraction        *interaction,
                               GTlsDatabaseVerifyFlags flags,
                               GCancellable           *cancellable,
                               GError                **error)
{
  PinTlsDatabase *self = PIN_TLS_DATABASE (database);
  g_autoptr(GError) local_error = NULL;
  GTlsCertificateFlags ca_flags = G_TLS_CERTIFICATE_UNKNOWN_CA;
  GTlsCertificateFlags result;
  PinTlsDecision decision;

  if (self->trust != NULL)
    ca_flags =
      g_tls_database_verify_chain (self->trust, chain, purpose, identity,
                                   interaction, flags, cancellable, &local_error);

  /* A failed verification must say so in the flags too: glib-networking
   * counts on it. */
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return ca_flags | G_TLS_CERTIFICATE_GENERIC_ERROR;
    }
  if (g_strcmp0 (purpose, G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER) != 0)
    return ca_flags;

  /* The trust database judged the certificate authorities and the name;
   * the policy adds the pins, or (in pin-only mode) decides alone. A pin
   * refusal shows as a generic error, the only flag GIO has for it. */
  decide (self->policy, self, self->trust, chain, identity,
          ca_flags & ~G_TLS_CERTIFICATE_GENERIC_ERROR, FALSE, &decision);
  result = decision.ca_errors;
  if (!decision.accepted && (result == 0 || !decision.pin_matched))
    result |= G_TLS_CERTIFICATE_GENERIC_ERROR;

  if (!decision.accepted)
    g_debug ("PinTlsDatabase %p: refused: %s", self, decision.error->message);
  _pin_tls_decision_clear (&decision);

  return result;
}

static GTlsCertificate *
pin_tls_database_lookup_certificate_issuer (GTlsDatabase           *database,
                                            GTlsCertificate        *certificate,
                                            GTlsInteraction        *interaction,
                                            GTlsDatabaseLookupFlags flags,
                                            GCancellable           *cancellable,
                                            GError                **error)
{
  PinTlsDatabase *self = PIN_TLS_DATABASE (database);

  if (self->trust == NULL)
    return NULL;

  return g_tls_database_lookup_certificate_issuer (
    self->trust, certificate, interaction, flags, cancellable, error);
}

static GList *
pin_tls_database_lookup_certificates_issued_by (GTlsDatabase           *database,
                                                GByteArray             *issuer_raw_dn,
                                                GTlsInteraction        *interaction,
                                                GTlsDatabaseLookupFlags flags,
                                                GCancellable           *cancellable,
                                                GError                **error)
{
  PinTlsDatabase *self = PIN_TLS_DATABASE (database);

  if (self->trust == NULL)
    return NULL;

  return g_tls_database_lookup_certificates_issued_by (
    self->trust, issuer_raw_dn, interaction, flags, cancellable, error);
}

static char *
pin_tls_database_create_certificate_handle (GTlsDatabase    *database,
                                            GTlsCertificate *certificate)
{
  PinTlsDatabase *self = PIN_TLS_DATABASE (database);

  if (self->trust == NULL)
    return NULL;

  return g_tls_database_create_certificate_handle (self->trust, certificate);
}

static GTlsCertificate *
pin_tls_database_lookup_certificate_for_handle (GTlsDatabase           *database,
                                                const char             *handle,
                                                GTlsInteraction        *interaction,
                                                GTlsDatabaseLookupFlags flags,
                                                GCancellable           *cancellable,
                                                GError                **error)
{
  PinTlsDatabase *self = PIN_TLS_DATABASE (database);

  if (self->trust == NULL)
    return NULL;

  return g_tls_database_lookup_certificate_for_handle (
    self->trust, handle, interaction, flags, cancellable, error);
}

static void
pin_tls_database_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  PinTlsDatabase *self = PIN_TLS_DATABASE (object);

  switch (prop_id)
    {
    case PROP_POLICY:
      g_value_set_object (value, self->policy);
      break;
    case PROP_TRUST:
      g_value_set_object (value, self->trust);
      break;
    /* GCOVR_EXCL_START: GObject only passes the properties installed above */
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
      /* GCOVR_EXCL_STOP */
    }
}

static void
pin_tls_database_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  PinTlsDatabase *self = PIN_TLS_DATABASE (object);

  switch (prop_id)
    {
    case PROP_POLICY:
      self->policy = g_value_dup_object (value);
      break;
    case PROP_TRUST:
      self->trust = g_value_dup_object (value);
      break;
    /* GCOVR_EXCL_START: GObject only passes the properties installed above */
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
      /* GCOVR_EXCL_STOP */
    }
}

static void
pin_tls_database_constructed (GObject *object)
{
  PinTlsDatabase *self = PIN_TLS_DATABASE (object);

  G_OBJECT_CLASS (pin_tls_database_parent_class)->constructed (object);

  /* Without a policy there would be nothing to enforce. */
  if (self->policy == NULL)
    self->policy = pin_tls_policy_new ();
}

static void
pin_tls_database_finalize (GObject *object)
{
  PinTlsDatabase *self = PIN_TLS_DATABASE (object);

  g_clear_object (&self->policy);
  g_clear_object (&self->trust);
  g_main_context_unref (self->report_context);
  g_thread_unref (self->report_thread);

  G_OBJECT_CLASS (pin_tls_database_parent_class)->finalize (object);
}

static void
pin_tls_database_class_init (PinTlsDatabaseClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GTlsDatabaseClass *database_class = G_TLS_DATABASE_CLASS (klass);
  const GParamFlags flags =
    G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = pin_tls_database_get_property;
  object_class->set_property = pin_tls_database_set_property;
  object_class->constructed = pin_tls_database_constructed;
  object_class->finalize = pin_tls_database_finalize;

  database_class->verify_chain = pin_tls_database_verify_chain;
  database_class->lookup_certificate_issuer =
    pin_tls_database_lookup_certificate_issuer;
  database_class->lookup_certificates_issued_by =
    pin_tls_database_lookup_certificates_issued_by;
  database_class->create_certificate_handle =
    pin_tls_database_create_certificate_handle;
  database_class->lookup_certificate_for_handle =
    pin_tls_database_lookup_certificate_for_handle;

  /**
   * PinTlsDatabase:policy:
   *
   * The policy whose pins the database enforces. A database created
   * without one has an empty policy, which refuses every server.
   */
  props[PROP_POLICY] =
    g_param_spec_object ("policy", NULL, NULL, PIN_TLS_TYPE_POLICY, flags);

  /**
   * PinTlsDatabase:trust:
   *
   * The database that decides on certificate authorities and server names,
   * or %NULL to trust no certificate authority, so that only pin-only
   * entries accept a server.
   */
  props[PROP_TRUST] =
    g_param_spec_object ("trust", NULL, NULL, G_TYPE_TLS_DATABASE, flags);

  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
pin_tls_database_init (PinTlsDatabase *self)
{
  self->report_context = g_main_context_ref_thread_default ();
  self->report_thread = g_thread_ref (g_thread_self ());
}

/**
 * pin_tls_database_new:
 * @policy: the pins to enforce
 * @trust: (nullable): the database that decides on certificate authorities
 *   and server names, usually the backend's default database
 *   ([method@Gio.TlsBackend.get_default_database]), or %NULL to trust no
 *   certificate authority
 *
 * Creates a database that accepts a server chain only if @policy accepts
 * it: in %PIN_TLS_MODE_CA_AND_PINS mode, @trust must accept it as well.
 * A refusal for pins shows as %G_TLS_CERTIFICATE_GENERIC_ERROR. Reports
 * go to [signal@PinTls.Policy::report], in the thread-default main context
 * of the caller: a check made on another thread reports from an idle
 * source there.
 *
 * Installed on a connection of the system TLS backend, the database alone
 * does not stop resumed sessions or accept-certificate handlers: use
 * [method@PinTls.Policy.arm_connection].
 *
 * Returns: (transfer full): a new database
 */
PinTlsDatabase *
pin_tls_database_new (PinTlsPolicy *policy,
                      GTlsDatabase *trust)
{
  g_return_val_if_fail (PIN_TLS_IS_POLICY (policy), NULL);
  g_return_val_if_fail (trust == NULL || G_IS_TLS_DATABASE (trust), NULL);

  return g_object_new (PIN_TLS_TYPE_DATABASE, "policy", policy, "trust", trust,
                       NULL);
}

/**
 * pin_tls_database_get_policy:
 * @self: a database
 *
 * Gets the [property@PinTls.Database:policy].
 *
 * Returns: (transfer none): the policy @self enforces
 */
PinTlsPolicy *
pin_tls_database_get_policy (PinTlsDatabase *self)
{
  g_return_val_if_fail (PIN_TLS_IS_DATABASE (self), NULL);

  return self->policy;
}

/**
 * pin_tls_database_get_trust:
 * @self: a database
 *
 * Gets the [property@PinTls.Database:trust].
 *
 * Returns: (transfer none) (nullable): the database that decides on
 *   certificate authorities, or %NULL if none is trusted
 */
GTlsDatabase *
pin_tls_database_get_trust (PinTlsDatabase *self)
{
  g_return_val_if_fail (PIN_TLS_IS_DATABASE (self), NULL);

  return self->trust;
}

/* Armed connections ------------------------------------------------------ */

/* What arming leaves on a connection. */
typedef struct
{
  PinTlsPolicy *policy;
  PinTlsDatabase *database; /* installed when armed */
  GError *refusal;          /* the pin verdict that closed the connection */
} Arming;

static void
arming_free (Arming *arming)
{
  g_clear_object (&arming->policy);
  g_clear_object (&arming->database);
  g_clear_error (&arming->refusal);
  g_free (arming);
}

static GQuark
arming_quark (void)
{
  return g_quark_from_static_string ("pintls-arming");
}

static Arming *
get_arming (GTlsConnection *connection)
{
  return g_object_get_qdata (G_OBJECT (connection), arming_quark ());
}

/* Shuts the transport under a connection whose pins failed, in both
 * directions: a handshake still running fails, and no application data can
 * leave. Shutting down, unlike closing, is safe while another thread still
 * holds the socket. */
static void
shut_down (GTlsConnection *connection)
{
  g_autoptr(GIOStream) base = NULL;

  g_object_get (connection, "base-io-stream", &base, NULL);
  if (G_IS_SOCKET_CONNECTION (base))
    g_socket_shutdown (g_socket_connection_get_socket (G_SOCKET_CONNECTION (base)),
                       TRUE, TRUE, NULL);
  else if (base != NULL)
    g_io_stream_close (base, NULL, NULL);
}

static void
refuse (GTlsConnection *connection,
        Arming         *arming,
        const GError   *error)
{
  g_debug ("Armed TLS connection %p refused, closing it: %s", connection,
           error->message);

  if (arming != NULL && arming->refusal == NULL)
    arming->refusal = g_error_copy (error);

  shut_down (connection);
}

/* Checks the chain @connection holds now against @policy, as its pins
 * decide alone: certificate authorities were the backend's business, and
 * accept-certificate handlers may accept their errors. */
static gboolean
check_pins (PinTlsPolicy   *policy,
            GTlsConnection *connection,
            Arming         *arming,
            GError        **error)
{
  GTlsCertificate *peer = g_tls_connection_get_peer_certificate (connection);
  GSocketConnectable *identity = NULL;
  GTlsDatabase *trust = NULL;
  gboolean quiet = FALSE;
  PinTlsDecision decision;
  gboolean refused;

  if (peer == NULL)
    {
      g_set_error_literal (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
                           "The server presented no certificate");
      return FALSE;
    }

  if (G_IS_TLS_CLIENT_CONNECTION (connection))
    identity = g_tls_client_connection_get_server_identity (
      G_TLS_CLIENT_CONNECTION (connection));

  /* The armed database has seen and reported this chain, unless someone
   * replaced it after arming. */
  if (arming != NULL)
    {
      trust = arming->database->trust;
      quiet = g_tls_connection_get_database (connection)
              == G_TLS_DATABASE (arming->database);
    }
  else
    {
      trust = g_tls_connection_get_database (connection);
    }

  decide (policy, arming != NULL ? arming->database : NULL, trust, peer,
          identity, 0, quiet, &decision);
  refused = !decision.accepted;
  if (refused)
    g_propagate_error (error, g_steal_pointer (&decision.error));
  _pin_tls_decision_clear (&decision);

  return !refused;
}

/* Runs each time a handshake has settled the peer certificate: after the
 * accept-certificate decision of a full handshake, while the handshake
 * waits for it, and at the end of a resumed handshake, which no
 * certificate check refused. */
static void
peer_certificate_cb (GTlsConnection *connection,
                     GParamSpec     *pspec,
                     gpointer        user_data)
{
  Arming *arming = get_arming (connection);
  g_autoptr(GError) error = NULL;

  if (arming == NULL || g_tls_connection_get_peer_certificate (connection) == NULL)
    return;

  if (!check_pins (arming->policy, connection, arming, &error))
    refuse (connection, arming, error);
}

static void
disable_resumption (GTlsConnection *connection)
{
  GObjectClass *klass = G_OBJECT_GET_CLASS (connection);

  if (g_object_class_find_property (klass, "session-resumption-enabled") != NULL)
    g_object_set (connection, "session-resumption-enabled", FALSE, NULL);
}

/**
 * pin_tls_policy_arm_connection:
 * @policy: the pins to enforce
 * @connection: a TLS client connection whose handshake has not started,
 *   usually one the system TLS backend made for libsoup or a
 *   [class@Gio.SocketClient]
 *
 * Makes @connection enforce @policy on every handshake, so that a pin
 * mismatch cannot be bypassed:
 *
 * - its database becomes a [class@PinTls.Database] around the database it
 *   had, so that a full handshake with a server that matches no pin fails
 *   with %G_TLS_ERROR_BAD_CERTIFICATE, and reports;
 * - session resumption is turned off if the backend has a switch for it
 *   (glib-networking 2.74 has none);
 * - after every handshake, full or resumed, the chain @connection ended up
 *   with is checked against the pins again, whatever accept-certificate
 *   handlers and validation flags decided. If the pins refuse it, the
 *   transport is shut down before any application data is sent: a
 *   handshake still running fails, and the first read or write after a
 *   completed one fails.
 *
 * The errors the application then sees are the backend's: the pin verdict
 * comes from [method@PinTls.Policy.check_connection] and from
 * [signal@PinTls.Policy::report].
 *
 * Arming twice with the same policy does nothing more; a connection cannot
 * be armed with two policies.
 */
void
pin_tls_policy_arm_connection (PinTlsPolicy   *policy,
                               GTlsConnection *connection)
{
  g_autoptr(PinTlsDatabase) database = NULL;
  Arming *arming;

  g_return_if_fail (PIN_TLS_IS_POLICY (policy));
  g_return_if_fail (G_IS_TLS_CLIENT_CONNECTION (connection));

  arming = get_arming (connection);
  g_return_if_fail (arming == NULL || arming->policy == policy);
  if (arming != NULL)
    return;

  database =
    pin_tls_database_new (policy, g_tls_connection_get_database (connection));
  g_tls_connection_set_database (connection, G_TLS_DATABASE (database));
  disable_resumption (connection);

  arming = g_new0 (Arming, 1);
  arming->policy = g_object_ref (policy);
  arming->database = g_steal_pointer (&database);
  g_object_set_qdata_full (G_OBJECT (connection), arming_quark (), arming,
                           (GDestroyNotify) arming_free);
  g_signal_connect (connection, "notify::peer-certificate",
                    G_CALLBACK (peer_certificate_cb), NULL);

  g_debug ("Armed TLS connection %p (%s) with pin policy %p", connection,
           G_OBJECT_TYPE_NAME (connection), policy);
}

/**
 * pin_tls_policy_check_connection:
 * @policy: a policy
 * @connection: a TLS client connection that has handshaken, or tried to
 * @error: return location for a #GError
 *
 * Checks the certificate chain @connection presented in its last
 * handshake against the pins of @policy, as an armed connection does after
 * every handshake, and shuts the transport down if they refuse it.
 * Certificate authority errors are left to the connection, which may have
 * accepted them through accept-certificate.
 *
 * Call it when a handshake is over, before sending anything, or after an
 * operation on the connection failed, to learn whether the pins were the
 * reason: a connection they refused keeps the first verdict.
 *
 * The error is %PIN_TLS_ERROR_PIN_MISMATCH, %PIN_TLS_ERROR_PINS_EXPIRED or
 * %PIN_TLS_ERROR_HOST_NOT_PINNED if the pins refuse the connection,
 * %G_TLS_ERROR_BAD_CERTIFICATE if it has no peer certificate (its
 * handshake has not run, or the server presented none), and
 * %G_IO_ERROR_INVALID_ARGUMENT if its server identity is not a valid name.
 *
 * Returns: %TRUE if the pins accept the connection's chain
 */
gboolean
pin_tls_policy_check_connection (PinTlsPolicy   *policy,
                                 GTlsConnection *connection,
                                 GError        **error)
{
  g_autoptr(GError) local_error = NULL;
  Arming *arming;

  g_return_val_if_fail (PIN_TLS_IS_POLICY (policy), FALSE);
  g_return_val_if_fail (G_IS_TLS_CLIENT_CONNECTION (connection), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  arming = get_arming (connection);
  if (arming != NULL && arming->policy != policy)
    arming = NULL;

  if (arming != NULL && arming->refusal != NULL)
    {
      g_propagate_error (error, g_error_copy (arming->refusal));
      return FALSE;
    }

  if (check_pins (policy, connection, arming, &local_error))
    return TRUE;

  refuse (connection, arming, local_error);
  g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

/**
 * pin_tls_policy_handle_network_event:
 * @policy: the pins to enforce
 * @event: what is happening to @connection
 * @connection: the connection the event is about
 *
 * Arms the TLS connections of a [class@Gio.SocketClient] or of libsoup
 * with @policy, from a handler of [signal@Gio.SocketClient::event] or of
 * `SoupMessage::network-event`, which both give this event and connection:
 * at %G_SOCKET_CLIENT_TLS_HANDSHAKING it calls
 * [method@PinTls.Policy.arm_connection]; at %G_SOCKET_CLIENT_TLS_HANDSHAKED
 * it checks the chain again with [method@PinTls.Policy.check_connection],
 * which shuts the connection down, before the first request is written, if
 * the pins refuse it. Other events are ignored.
 */
void
pin_tls_policy_handle_network_event (PinTlsPolicy      *policy,
                                     GSocketClientEvent event,
                                     GIOStream         *connection)
{
  g_return_if_fail (PIN_TLS_IS_POLICY (policy));
  g_return_if_fail (connection == NULL || G_IS_IO_STREAM (connection));

  if (!G_IS_TLS_CLIENT_CONNECTION (connection))
    return;

  if (event == G_SOCKET_CLIENT_TLS_HANDSHAKING)
    pin_tls_policy_arm_connection (policy, G_TLS_CONNECTION (connection));
  else if (event == G_SOCKET_CLIENT_TLS_HANDSHAKED)
    pin_tls_policy_check_connection (policy, G_TLS_CONNECTION (connection), NULL);
}

static void
closure_unref_policy (gpointer  policy,
                      GClosure *closure)
{
  g_object_unref (policy);
}

static void
socket_client_event_cb (GSocketClient      *client,
                        GSocketClientEvent  event,
                        GSocketConnectable *connectable,
                        GIOStream          *connection,
                        PinTlsPolicy       *policy)
{
  pin_tls_policy_handle_network_event (policy, event, connection);
}

/**
 * pin_tls_policy_arm_socket_client:
 * @policy: the pins to enforce
 * @client: a socket client, usually with TLS on ([method@Gio.SocketClient.set_tls])
 *
 * Arms every TLS connection @client makes from now on with @policy,
 * through [method@PinTls.Policy.handle_network_event]: before its
 * handshake, and again once the handshake is done, before
 * [method@Gio.SocketClient.connect] returns it.
 *
 * A connection the pins refuse after a resumed handshake is returned shut
 * down, and its first read or write fails; one refused during a full
 * handshake is not returned.
 */
void
pin_tls_policy_arm_socket_client (PinTlsPolicy  *policy,
                                  GSocketClient *client)
{
  g_return_if_fail (PIN_TLS_IS_POLICY (policy));
  g_return_if_fail (G_IS_SOCKET_CLIENT (client));

  /* The client holds the policy: were it to go first, its connections
   * would no longer be pinned. */
  g_signal_connect_data (client, "event", G_CALLBACK (socket_client_event_cb),
                         g_object_ref (policy),
                         (GClosureNotify) closure_unref_policy, 0);
}
