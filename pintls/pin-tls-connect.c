/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Connecting to a server: a handshaken pinned connection in one call, sync
 * or async, and a look at the certificates a server presents, for learning
 * its pins. */

#include "pin-tls-private.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* A handshake that has not progressed in this long has failed. */
#define FETCH_TIMEOUT_SECONDS 30

/* GnuTLS sends the client's last handshake flight in more than one write;
 * under Nagle's algorithm the second write waits for the server's delayed
 * acknowledgement, about 40 ms per handshake. */
static void
disable_nagle (GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket (connection);

  if (g_socket_get_family (socket) != G_SOCKET_FAMILY_UNIX)
    g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);
}

static GSocketConnection *
connect_tcp (GSocketConnectable *address,
             guint               timeout,
             GCancellable       *cancellable,
             GError            **error)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  GSocketConnection *connection;

  g_socket_client_set_timeout (client, timeout);
  connection = g_socket_client_connect (client, address, cancellable, error);
  if (connection != NULL)
    disable_nagle (connection);

  return connection;
}

/* A connection over @tcp enforcing @pins, or else @policy. */
static PinTlsClientConnection *
new_connection (GSocketConnection  *tcp,
                GSocketConnectable *address,
                PinTlsPinSet       *pins,
                PinTlsPolicy       *policy,
                GError            **error)
{
  if (policy != NULL)
    return pin_tls_client_connection_new_with_policy (G_IO_STREAM (tcp), address, policy,
                                                      error);

  return pin_tls_client_connection_new (G_IO_STREAM (tcp), address, pins, error);
}

static PinTlsClientConnection *
connect_sync (const char   *host_and_port,
              guint16       default_port,
              PinTlsPinSet *pins,
              PinTlsPolicy *policy,
              GCancellable *cancellable,
              GError      **error)
{
  g_autoptr(GSocketConnectable) address = NULL;
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(PinTlsClientConnection) connection = NULL;

  address = g_network_address_parse (host_and_port, default_port, error);
  if (address == NULL)
    return NULL;

  tcp = connect_tcp (address, 0, cancellable, error);
  if (tcp == NULL)
    return NULL;

  connection = new_connection (tcp, address, pins, policy, error);
  if (connection == NULL
      || !g_tls_connection_handshake (G_TLS_CONNECTION (connection),
                                      cancellable, error))
    return NULL;

  return g_steal_pointer (&connection);
}

/**
 * pin_tls_connect:
 * @host_and_port: the server, as `host`, `host:port` or `[address]:port`
 * @default_port: the port to use if @host_and_port has none
 * @pins: the pins the server must match
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects to a server and completes a TLS handshake that accepts only a
 * server presenting a pinned certificate or key, in
 * %PIN_TLS_MODE_PIN_ONLY mode: the pins are the whole trust decision, so
 * self-signed servers work. The host name is sent as SNI.
 *
 * ```c
 * g_autoptr(PinTlsClientConnection) connection =
 *   pin_tls_connect ("example.com:8443", 443, pins, NULL, &error);
 *
 * if (g_error_matches (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH))
 *   g_printerr ("The server has a new certificate: please update.\n");
 * ```
 *
 * The error is %PIN_TLS_ERROR_PIN_MISMATCH if the server presented no
 * pinned certificate, an error in the %G_TLS_ERROR domain for other TLS
 * failures, and one in the %G_IO_ERROR domain (such as
 * %G_IO_ERROR_CONNECTION_REFUSED or %G_IO_ERROR_CANCELLED) if the server
 * cannot be reached.
 *
 * [func@PinTls.connect_async] does the same without blocking.
 *
 * Returns: (transfer full): a connection that has completed its handshake,
 *   or %NULL on error
 */
PinTlsClientConnection *
pin_tls_connect (const char   *host_and_port,
                 guint16       default_port,
                 PinTlsPinSet *pins,
                 GCancellable *cancellable,
                 GError      **error)
{
  g_return_val_if_fail (host_and_port != NULL, NULL);
  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (pins), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return connect_sync (host_and_port, default_port, pins, NULL, cancellable, error);
}

/**
 * pin_tls_connect_with_policy:
 * @host_and_port: the server, as `host`, `host:port` or `[address]:port`
 * @default_port: the port to use if @host_and_port has none
 * @policy: the policy whose entry for the host decides
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Does what [func@PinTls.connect] does, with the pins, trust mode, expiry
 * and enforcement that @policy's entry for the host asks for instead of a
 * pin set. Entries in %PIN_TLS_MODE_CA_AND_PINS mode are checked against
 * the system's certificate authorities.
 *
 * ```c
 * g_autoptr(PinTlsPolicy) policy = pin_tls_policy_new_from_file ("pins.ini", &error);
 * g_autoptr(PinTlsClientConnection) connection =
 *   pin_tls_connect_with_policy ("api.example.com", 443, policy, NULL, &error);
 * ```
 *
 * The error is %PIN_TLS_ERROR_HOST_NOT_PINNED, before anything is sent, if
 * @policy refuses the host; %PIN_TLS_ERROR_PIN_MISMATCH or
 * %PIN_TLS_ERROR_PINS_EXPIRED if the server presented no pinned
 * certificate; otherwise as for [func@PinTls.connect].
 * [func@PinTls.connect_with_policy_async] does the same without blocking.
 *
 * Returns: (transfer full): a connection that has completed its handshake,
 *   or %NULL on error
 */
PinTlsClientConnection *
pin_tls_connect_with_policy (const char   *host_and_port,
                             guint16       default_port,
                             PinTlsPolicy *policy,
                             GCancellable *cancellable,
                             GError      **error)
{
  g_return_val_if_fail (host_and_port != NULL, NULL);
  g_return_val_if_fail (PIN_TLS_IS_POLICY (policy), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return connect_sync (host_and_port, default_port, NULL, policy, cancellable, error);
}

typedef struct
{
  GSocketConnectable *address;
  PinTlsPinSet *pins;
  PinTlsPolicy *policy;
  PinTlsClientConnection *connection;
} ConnectData;

static void
connect_data_free (ConnectData *data)
{
  g_clear_object (&data->address);
  g_clear_object (&data->pins);
  g_clear_object (&data->policy);
  g_clear_object (&data->connection);
  g_free (data);
}

static void
connect_handshake_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ConnectData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error))
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_steal_pointer (&data->connection), g_object_unref);
}

static void
connect_tcp_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ConnectData *data = g_task_get_task_data (task);
  g_autoptr(GSocketConnection) tcp = NULL;
  GError *error = NULL;

  tcp = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  if (tcp != NULL)
    {
      disable_nagle (tcp);
      data->connection = new_connection (tcp, data->address, data->pins, data->policy,
                                         &error);
    }
  if (data->connection == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  /* The handshake runs on the context the caller was on, whatever this
   * callback's thread-default context is. */
  g_main_context_push_thread_default (g_task_get_context (task));
  g_tls_connection_handshake_async (G_TLS_CONNECTION (data->connection),
                                    g_task_get_priority (task),
                                    g_task_get_cancellable (task), connect_handshake_cb,
                                    g_object_ref (task));
  g_main_context_pop_thread_default (g_task_get_context (task));
}

static void
connect_async (const char         *host_and_port,
               guint16             default_port,
               PinTlsPinSet       *pins,
               PinTlsPolicy       *policy,
               GCancellable       *cancellable,
               GAsyncReadyCallback callback,
               gpointer            user_data)
{
  g_autoptr(GSocketClient) client = NULL;
  g_autoptr(GTask) task = NULL;
  ConnectData *data;
  GError *error = NULL;

  /* Both helpers share pin_tls_connect_finish(), and its tag. */
  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, pin_tls_connect_async);
  data = g_new0 (ConnectData, 1);
  g_set_object (&data->pins, pins);
  g_set_object (&data->policy, policy);
  g_task_set_task_data (task, data, (GDestroyNotify) connect_data_free);

  data->address = g_network_address_parse (host_and_port, default_port, &error);
  if (data->address == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  client = g_socket_client_new ();
  g_socket_client_connect_async (client, data->address, cancellable, connect_tcp_cb,
                                 g_object_ref (task));
}

/**
 * pin_tls_connect_async:
 * @host_and_port: the server, as `host`, `host:port` or `[address]:port`
 * @default_port: the port to use if @host_and_port has none
 * @pins: the pins the server must match
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): what to call when the connection is ready or
 *   has failed
 * @user_data: (closure): data for @callback
 *
 * Starts what [func@PinTls.connect] does without blocking: connects, then
 * runs the handshake on the thread-default main context of the calling
 * thread, where @callback is called. Call [func@PinTls.connect_finish]
 * from it to get the connection.
 *
 * ```c
 * static void
 * connected_cb (GObject *source, GAsyncResult *result, gpointer user_data)
 * {
 *   g_autoptr(GError) error = NULL;
 *   g_autoptr(PinTlsClientConnection) connection =
 *     pin_tls_connect_finish (result, &error);
 *
 *   if (g_error_matches (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH))
 *     g_printerr ("The server has a new certificate: please update.\n");
 * }
 *
 * pin_tls_connect_async ("example.com:8443", 443, pins, NULL, connected_cb, NULL);
 * ```
 *
 * From JavaScript, `Gio._promisify (PinTls, 'connect_async', 'connect_finish')`
 * makes it awaitable.
 */
void
pin_tls_connect_async (const char         *host_and_port,
                       guint16             default_port,
                       PinTlsPinSet       *pins,
                       GCancellable       *cancellable,
                       GAsyncReadyCallback callback,
                       gpointer            user_data)
{
  g_return_if_fail (host_and_port != NULL);
  g_return_if_fail (PIN_TLS_IS_PIN_SET (pins));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  connect_async (host_and_port, default_port, pins, NULL, cancellable, callback,
                 user_data);
}

/**
 * pin_tls_connect_with_policy_async:
 * @host_and_port: the server, as `host`, `host:port` or `[address]:port`
 * @default_port: the port to use if @host_and_port has none
 * @policy: the policy whose entry for the host decides
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): what to call when the connection is ready or
 *   has failed
 * @user_data: (closure): data for @callback
 *
 * Starts what [func@PinTls.connect_with_policy] does without blocking, as
 * [func@PinTls.connect_async] does for a pin set: the handshake runs on the
 * thread-default main context of the calling thread, where @callback is
 * called, and so are the policy's reports. Call
 * [func@PinTls.connect_finish] from @callback to get the connection.
 */
void
pin_tls_connect_with_policy_async (const char         *host_and_port,
                                   guint16             default_port,
                                   PinTlsPolicy       *policy,
                                   GCancellable       *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer            user_data)
{
  g_return_if_fail (host_and_port != NULL);
  g_return_if_fail (PIN_TLS_IS_POLICY (policy));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  connect_async (host_and_port, default_port, NULL, policy, cancellable, callback,
                 user_data);
}

/**
 * pin_tls_connect_finish:
 * @result: the result given to the callback of [func@PinTls.connect_async]
 * @error: return location for a #GError
 *
 * Finishes [func@PinTls.connect_async] or
 * [func@PinTls.connect_with_policy_async]. The errors are those of
 * [func@PinTls.connect] (and, with a policy, those of
 * [func@PinTls.connect_with_policy]): %PIN_TLS_ERROR_PIN_MISMATCH if the server
 * presented no pinned certificate, an error in the %G_TLS_ERROR domain for
 * other TLS failures, and one in the %G_IO_ERROR domain (such as
 * %G_IO_ERROR_CANCELLED) if the server cannot be reached or the operation
 * was cancelled. A cancelled operation never returns a connection.
 *
 * Returns: (transfer full): a connection that has completed its handshake,
 *   or %NULL on error
 */
PinTlsClientConnection *
pin_tls_connect_finish (GAsyncResult *result,
                        GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result, pin_tls_connect_async), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct
{
  gnutls_session_t session;
  GPollableInputStream *input;
  GPollableOutputStream *output;
  GCancellable *cancellable;
  GError *io_error;         /* why the socket failed, if it did */
  GPtrArray *chain;
} FetchState;

/* A failed read or write is fatal to the fetch: EIO tells GnuTLS not to
 * retry, and the GError says why (a cancellation, a timeout). */
static ssize_t
fetch_transport_result (FetchState *state,
                        gssize      result,
                        GError     *error)
{
  if (result >= 0)
    return result;

  g_clear_error (&state->io_error);
  state->io_error = error;
  gnutls_transport_set_errno (state->session, EIO);

  return -1;
}

static ssize_t
fetch_pull_cb (gnutls_transport_ptr_t transport,
               void                  *buffer,
               size_t                 size)
{
  FetchState *state = transport;
  GError *error = NULL;
  gssize result;

  result = g_pollable_stream_read (G_INPUT_STREAM (state->input), buffer, size,
                                   TRUE, state->cancellable, &error);

  return fetch_transport_result (state, result, error);
}

static ssize_t
fetch_push_cb (gnutls_transport_ptr_t transport,
               const void            *buffer,
               size_t                 size)
{
  FetchState *state = transport;
  GError *error = NULL;
  gssize result;

  result = g_pollable_stream_write (G_OUTPUT_STREAM (state->output), buffer,
                                    size, TRUE, state->cancellable, &error);

  return fetch_transport_result (state, result, error);
}

/* Copies the server's certificates and stops the handshake: nothing about
 * this server is trusted, and no data will follow. */
static int
fetch_capture_cb (gnutls_session_t session)
{
  FetchState *state = gnutls_session_get_ptr (session);
  const gnutls_datum_t *peers;
  unsigned int n_peers = 0;
  unsigned int i;

  peers = gnutls_certificate_get_peers (session, &n_peers);
  for (i = 0; peers != NULL && i < n_peers; i++)
    g_ptr_array_add (state->chain, g_bytes_new (peers[i].data, peers[i].size));

  return GNUTLS_E_CERTIFICATE_ERROR;
}

static gboolean
fetch_handshake (FetchState *state,
                 const char *server_name,
                 GError    **error)
{
  static gnutls_certificate_credentials_t credentials;
  gnutls_session_t session;
  int ret;

  if (g_once_init_enter (&credentials))
    {
      gnutls_certificate_credentials_t created;

      gnutls_certificate_allocate_credentials (&created);
      g_once_init_leave (&credentials, created);
    }

  gnutls_init (&session, GNUTLS_CLIENT | GNUTLS_NO_TICKETS);
  state->session = session;
  gnutls_set_default_priority (session);
  gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, credentials);
  if (!g_hostname_is_ip_address (server_name))
    gnutls_server_name_set (session, GNUTLS_NAME_DNS, server_name,
                            strlen (server_name));
  gnutls_session_set_ptr (session, state);
  gnutls_session_set_verify_function (session, fetch_capture_cb);
  gnutls_transport_set_ptr (session, state);
  gnutls_transport_set_pull_function (session, fetch_pull_cb);
  gnutls_transport_set_push_function (session, fetch_push_cb);

  do
    ret = gnutls_handshake (session);
  while (ret < 0 && !gnutls_error_is_fatal (ret) && state->chain->len == 0);

  if (state->chain->len == 0)
    {
      /* GCOVR_EXCL_START: with certificate credentials only, a handshake
       * cannot complete without the server's certificates, which end it
       * above. */
      if (ret == 0)
        g_set_error_literal (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
                             "The server presented no certificate");
      /* GCOVR_EXCL_STOP */
      else if (state->io_error != NULL)
        g_propagate_error (error, g_steal_pointer (&state->io_error));
      else
        g_propagate_error (error, _pin_tls_error_from_gnutls (session, ret, TRUE));
    }
  gnutls_deinit (session);
  g_clear_error (&state->io_error);

  return state->chain->len > 0;
}

/**
 * pin_tls_fetch_server_chain:
 * @host_and_port: the server, as `host`, `host:port` or `[address]:port`
 * @default_port: the port to use if @host_and_port has none
 * @server_name: (nullable): the name to send as SNI, if not the host of
 *   @host_and_port
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects to a server and returns the certificates it presents, without
 * trusting them: the handshake stops once they arrive, and no data is
 * exchanged. This is how to learn a server's pins, with
 * [func@PinTls.spki_pin_for_der] and [func@PinTls.find_issuer_path]. What
 * it returns comes from whoever answered, so check the pins out of band
 * before shipping them.
 *
 * The error is in the %G_IO_ERROR domain if the server cannot be reached,
 * and in the %G_TLS_ERROR domain if the handshake fails before the server
 * presents certificates.
 *
 * Returns: (transfer container) (element-type GBytes): the DER certificates
 *   as the server sent them, leaf first, or %NULL on error. The array frees
 *   its certificates: release it with g_ptr_array_unref().
 */
GPtrArray *
pin_tls_fetch_server_chain (const char   *host_and_port,
                            guint16       default_port,
                            const char   *server_name,
                            GCancellable *cancellable,
                            GError      **error)
{
  g_autoptr(GSocketConnectable) address = NULL;
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(GPtrArray) chain = NULL;
  g_autofree char *name = NULL;
  FetchState state = { NULL, };

  g_return_val_if_fail (host_and_port != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  address = g_network_address_parse (host_and_port, default_port, error);
  if (address == NULL)
    return NULL;

  name = _pin_tls_normalize_host_name (server_name ? server_name
                                       : g_network_address_get_hostname (G_NETWORK_ADDRESS (address)),
                                       error);
  if (name == NULL)
    return NULL;

  tcp = connect_tcp (address, FETCH_TIMEOUT_SECONDS, cancellable, error);
  if (tcp == NULL)
    return NULL;

  chain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  state.input = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (tcp)));
  state.output = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (G_IO_STREAM (tcp)));
  state.cancellable = cancellable;
  state.chain = chain;

  if (!fetch_handshake (&state, name, error))
    return NULL;

  return g_steal_pointer (&chain);
}
