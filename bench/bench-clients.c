/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The clients pintls-bench compares. Every one connects to 127.0.0.1 with
 * TCP_NODELAY set, sends "localhost" as SNI (except pin_tls_connect(), given
 * the address), lets GnuTLS use its default priorities, and accepts only a
 * server whose leaf certificate is the pinned one:
 *
 * - plain GnuTLS checks the leaf's public-key digest in a verify function;
 * - pintls checks its pin set, inside the same verify function;
 * - glib-networking trusts a GTlsFileDatabase holding the leaf and checks
 *   the host name, as a GIO program pins without pintls. */

#include "bench.h"

#include <errno.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SERVER_NAME "localhost"
#define DIGEST_SIZE 32

/* The clients ------------------------------------------------------------ */

static GIOStream *
wrap_pintls (GIOStream   *tcp,
             BenchTarget *target,
             GError     **error)
{
  return G_IO_STREAM (
    pin_tls_client_connection_new (tcp, target->identity, target->pins, error));
}

/* The database as a construction property, so the connection never loads
 * the system's certificate authorities. */
static GIOStream *
wrap_glib (GIOStream   *tcp,
           BenchTarget *target,
           GError     **error)
{
  GType type =
    g_tls_backend_get_client_connection_type (g_tls_backend_get_default ());

  return g_initable_new (type, NULL, error,
                         "base-io-stream", tcp,
                         "server-identity", target->identity,
                         "database", target->database,
                         NULL);
}

/* What GIO's documentation suggests: the connection starts with the
 * system's database, replaced before the handshake. */
static GIOStream *
wrap_glib_set_database (GIOStream   *tcp,
                        BenchTarget *target,
                        GError     **error)
{
  GIOStream *connection = g_tls_client_connection_new (tcp, target->identity, error);

  if (connection != NULL)
    g_tls_connection_set_database (G_TLS_CONNECTION (connection), target->database);

  return connection;
}

const BenchClient bench_clients[] = {
  { "gnutls", "GnuTLS, pin checked in a verify function", BENCH_MODE_PLAIN, FALSE,
    NULL },
  { "gnutls-pintls", "GnuTLS + pin_tls_session_enforce_pins()", BENCH_MODE_PLAIN,
    FALSE, NULL },
  { "pintls-sync", "PinTlsClientConnection, sync", BENCH_MODE_SYNC, FALSE,
    wrap_pintls },
  { "pintls-async", "PinTlsClientConnection, async", BENCH_MODE_ASYNC, FALSE,
    wrap_pintls },
  { "pintls-connect", "pin_tls_connect()", BENCH_MODE_SYNC, FALSE, NULL },
  { "glib-sync", "glib-networking, database property, sync", BENCH_MODE_SYNC, TRUE,
    wrap_glib },
  { "glib-async", "glib-networking, database property, async", BENCH_MODE_ASYNC,
    TRUE, wrap_glib },
  { "glib-set", "glib-networking, database set after new(), sync", BENCH_MODE_SYNC,
    TRUE, wrap_glib_set_database },
};

const guint bench_n_clients = G_N_ELEMENTS (bench_clients);

const BenchClient *
bench_client_find (const char *id)
{
  guint i;

  for (i = 0; i < bench_n_clients; i++)
    {
      if (g_str_equal (bench_clients[i].id, id))
        return &bench_clients[i];
    }

  return NULL;
}

/* The target -------------------------------------------------------------- */

static gboolean
spki_digest_of_file (const char *path,
                     guint8     *digest,
                     GError    **error)
{
  g_autofree char *pem = NULL;
  gnutls_x509_crt_t certificate;
  gnutls_datum_t datum;
  size_t size = DIGEST_SIZE;
  gsize length;
  int ret;

  if (!g_file_get_contents (path, &pem, &length, error))
    return FALSE;

  datum.data = (unsigned char *) pem;
  datum.size = length;
  gnutls_x509_crt_init (&certificate);
  ret = gnutls_x509_crt_import (certificate, &datum, GNUTLS_X509_FMT_PEM);
  if (ret == 0)
    ret = gnutls_x509_crt_get_key_id (certificate, GNUTLS_KEYID_USE_SHA256, digest,
                                      &size);
  gnutls_x509_crt_deinit (certificate);

  if (ret < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: %s", path,
                   gnutls_strerror (ret));
      return FALSE;
    }

  return TRUE;
}

static gboolean
is_glib_networking_gnutls (void)
{
  return g_str_equal (G_OBJECT_TYPE_NAME (g_tls_backend_get_default ()),
                      "GTlsBackendGnutls");
}

BenchTarget *
bench_target_new (guint16     port,
                  const char *leaf_path,
                  GError    **error)
{
  BenchTarget *target = g_new0 (BenchTarget, 1);
  g_autofree char *encoded = NULL;
  g_autofree char *pin = NULL;
  g_autoptr(GError) database_error = NULL;

  if (!spki_digest_of_file (leaf_path, target->spki_digest, error))
    {
      bench_target_free (target);
      return NULL;
    }

  encoded = g_base64_encode (target->spki_digest, DIGEST_SIZE);
  pin = g_strconcat ("sha256/", encoded, NULL);
  target->pins = pin_tls_pin_set_new ((const char *const[]){ pin, NULL }, error);
  if (target->pins == NULL)
    {
      bench_target_free (target);
      return NULL;
    }

  target->port = port;
  target->address = G_INET_SOCKET_ADDRESS (
    g_inet_socket_address_new_from_string ("127.0.0.1", port));
  target->identity = g_network_address_new (SERVER_NAME, port);
  target->host_and_port = g_strdup_printf ("127.0.0.1:%u", port);
  target->socket_client = g_socket_client_new ();
  g_socket_client_set_enable_proxy (target->socket_client, FALSE);

  if (is_glib_networking_gnutls ())
    target->database = g_tls_file_database_new (leaf_path, &database_error);
  if (target->database == NULL)
    target->database_error =
      g_strdup (database_error ? database_error->message
                                 : "glib-networking's GnuTLS backend "
                "is not the GIO TLS backend");

  return target;
}

void
bench_target_free (BenchTarget *target)
{
  g_clear_object (&target->pins);
  g_clear_object (&target->address);
  g_clear_object (&target->identity);
  g_clear_object (&target->database);
  g_clear_object (&target->socket_client);
  g_free (target->host_and_port);
  g_free (target->database_error);
  g_free (target);
}

/* Why @client cannot run here, or NULL if it can. */
char *
bench_client_unavailable (const BenchClient *client,
                          BenchTarget       *target)
{
  if (client->glib_networking && target->database == NULL)
    return g_strdup (target->database_error);

  return NULL;
}

/* Plain GnuTLS --------------------------------------------------------------- */

static gnutls_certificate_credentials_t
plain_credentials (void)
{
  static gnutls_certificate_credentials_t credentials;

  if (g_once_init_enter (&credentials))
    {
      gnutls_certificate_credentials_t created;

      gnutls_certificate_allocate_credentials (&created);
      g_once_init_leave (&credentials, created);
    }

  return credentials;
}

/* The least a pinning client can do: hash the leaf's public key and
 * compare it with the one pin. */
static int
plain_verify_cb (gnutls_session_t session)
{
  const BenchTarget *target = gnutls_session_get_ptr (session);
  const gnutls_datum_t *peers;
  unsigned int n_peers = 0;
  gnutls_x509_crt_t leaf;
  guint8 digest[DIGEST_SIZE];
  size_t size = sizeof digest;
  int ret;

  peers = gnutls_certificate_get_peers (session, &n_peers);
  if (peers == NULL || n_peers == 0)
    return -1;

  gnutls_x509_crt_init (&leaf);
  ret = gnutls_x509_crt_import (leaf, &peers[0], GNUTLS_X509_FMT_DER);
  if (ret == 0)
    ret = gnutls_x509_crt_get_key_id (leaf, GNUTLS_KEYID_USE_SHA256, digest, &size);
  gnutls_x509_crt_deinit (leaf);

  if (ret < 0 || size != DIGEST_SIZE
      || memcmp (digest, target->spki_digest, DIGEST_SIZE) != 0)
    return -1;

  return 0;
}

static int
plain_connect (BenchTarget *target,
               GError     **error)
{
  struct sockaddr_in address = { 0 };
  int one = 1;
  int saved_errno;
  int fd;

  fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    goto failed;

  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  address.sin_port = htons (target->port);
  if (connect (fd, (struct sockaddr *) &address, sizeof address) == 0)
    return fd;

failed:
  saved_errno = errno;
  if (fd >= 0)
    close (fd);
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               "Cannot connect: %s", g_strerror (saved_errno));
  return -1;
}

static gboolean
plain_enforce_pins (const BenchClient *client,
                    gnutls_session_t   session,
                    BenchTarget       *target,
                    GError           **error)
{
  if (g_str_equal (client->id, "gnutls-pintls"))
    return pin_tls_session_enforce_pins (session, target->pins,
                                         PIN_TLS_MODE_PIN_ONLY, SERVER_NAME, error);

  gnutls_session_set_ptr (session, target);
  gnutls_session_set_verify_function (session, plain_verify_cb);

  return TRUE;
}

static BenchConnection *
plain_open (const BenchClient *client,
            BenchTarget       *target,
            GError           **error)
{
  BenchConnection *connection;
  gnutls_session_t session;
  int ret;
  int fd;

  fd = plain_connect (target, error);
  if (fd < 0)
    return NULL;

  gnutls_init (&session, GNUTLS_CLIENT | GNUTLS_NO_TICKETS);
  gnutls_set_default_priority (session);
  gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, plain_credentials ());
  gnutls_server_name_set (session, GNUTLS_NAME_DNS, SERVER_NAME,
                          strlen (SERVER_NAME));
  gnutls_transport_set_int (session, fd);

  ret = -1;
  if (plain_enforce_pins (client, session, target, error))
    {
      do
        ret = gnutls_handshake (session);
      while (ret < 0 && !gnutls_error_is_fatal (ret));

      if (ret < 0)
        g_propagate_error (error, pin_tls_session_handshake_error (session, ret));
    }

  if (ret < 0)
    {
      gnutls_deinit (session);
      close (fd);
      return NULL;
    }

  connection = g_new0 (BenchConnection, 1);
  connection->client = client;
  connection->fd = fd;
  connection->session = session;

  return connection;
}

/* GIO ---------------------------------------------------------------------- */

static void
set_no_delay (GSocketConnection *tcp)
{
  g_socket_set_option (g_socket_connection_get_socket (tcp), IPPROTO_TCP,
                       TCP_NODELAY, 1, NULL);
}

static BenchConnection *
gio_connection_new (const BenchClient *client,
                    GIOStream         *stream)
{
  BenchConnection *connection = g_new0 (BenchConnection, 1);

  connection->client = client;
  connection->stream = stream;
  connection->fd = -1;

  return connection;
}

static BenchConnection *
gio_open (const BenchClient *client,
          BenchTarget       *target,
          GError           **error)
{
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(GIOStream) tls = NULL;

  /* pin_tls_connect() makes its own TCP connection. */
  if (client->wrap == NULL)
    {
      tls = G_IO_STREAM (
        pin_tls_connect (target->host_and_port, 0, target->pins, NULL, error));
      return tls != NULL ? gio_connection_new (client, g_steal_pointer (&tls))
                         : NULL;
    }

  tcp = g_socket_client_connect (
    target->socket_client, G_SOCKET_CONNECTABLE (target->address), NULL, error);
  if (tcp == NULL)
    return NULL;

  set_no_delay (tcp);
  tls = client->wrap (G_IO_STREAM (tcp), target, error);
  if (tls == NULL
      || !g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, error))
    return NULL;

  return gio_connection_new (client, g_steal_pointer (&tls));
}

/* Opens a connection and completes its handshake, with blocking calls. */
BenchConnection *
bench_connection_open (const BenchClient *client,
                       BenchTarget       *target,
                       GError           **error)
{
  if (client->mode == BENCH_MODE_PLAIN)
    return plain_open (client, target, error);

  return gio_open (client, target, error);
}

typedef struct
{
  const BenchClient *client;
  BenchTarget *target;
  BenchOpenedFunc callback;
  gpointer user_data;
  GIOStream *tls;
} OpenJob;

static void
open_job_finish (OpenJob *job,
                 GError  *error)
{
  BenchConnection *connection = NULL;

  if (error == NULL)
    connection = gio_connection_new (job->client, g_steal_pointer (&job->tls));
  g_clear_object (&job->tls);

  job->callback (connection, error, job->user_data);
  g_clear_error (&error);
  g_free (job);
}

static void
handshake_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  GError *error = NULL;

  g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error);
  open_job_finish (data, error);
}

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  OpenJob *job = data;
  g_autoptr(GSocketConnection) tcp = NULL;
  GError *error = NULL;

  tcp = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  if (tcp != NULL)
    {
      set_no_delay (tcp);
      job->tls = job->client->wrap (G_IO_STREAM (tcp), job->target, &error);
    }

  if (job->tls == NULL)
    {
      open_job_finish (job, error);
      return;
    }

  g_tls_connection_handshake_async (G_TLS_CONNECTION (job->tls), G_PRIORITY_DEFAULT,
                                    NULL, handshake_cb, job);
}

/* Opens a connection of an asynchronous client from the thread-default
 * main context: the TCP connection, then the handshake. @callback gets the
 * connection, or the error, which it does not own. */
void
bench_connection_open_async (const BenchClient *client,
                             BenchTarget       *target,
                             BenchOpenedFunc    callback,
                             gpointer           user_data)
{
  OpenJob *job = g_new0 (OpenJob, 1);

  g_return_if_fail (client->mode == BENCH_MODE_ASYNC);

  job->client = client;
  job->target = target;
  job->callback = callback;
  job->user_data = user_data;
  g_socket_client_connect_async (target->socket_client,
                                 G_SOCKET_CONNECTABLE (target->address), NULL,
                                 connected_cb, job);
}

/* Blocking I/O on any connection ------------------------------------------ */

static gboolean
plain_failed (int      code,
              GError **error)
{
  g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC, "%s", gnutls_strerror (code));
  return FALSE;
}

gboolean
bench_connection_write_all (BenchConnection *connection,
                            const void      *data,
                            gsize            size,
                            GError         **error)
{
  const guint8 *next = data;

  if (connection->stream != NULL)
    return g_output_stream_write_all (
      g_io_stream_get_output_stream (connection->stream), data, size, NULL, NULL,
      error);

  while (size > 0)
    {
      ssize_t sent = gnutls_record_send (connection->session, next, size);

      if (sent == GNUTLS_E_AGAIN || sent == GNUTLS_E_INTERRUPTED)
        continue;
      if (sent < 0)
        return plain_failed (sent, error);

      next += sent;
      size -= sent;
    }

  return TRUE;
}

gssize
bench_connection_read (BenchConnection *connection,
                       void            *buffer,
                       gsize            size,
                       GError         **error)
{
  if (connection->stream != NULL)
    return g_input_stream_read (g_io_stream_get_input_stream (connection->stream),
                                buffer, size, NULL, error);

  for (;;)
    {
      ssize_t n = gnutls_record_recv (connection->session, buffer, size);

      if (n >= 0)
        return n;
      if (gnutls_error_is_fatal (n))
        {
          plain_failed (n, error);
          return -1;
        }
    }
}

/* Closes with close_notify, as a well-behaved client does. */
void
bench_connection_close (BenchConnection *connection)
{
  if (connection->stream != NULL)
    {
      g_io_stream_close (connection->stream, NULL, NULL);
      g_object_unref (connection->stream);
    }
  else
    {
      gnutls_bye (connection->session, GNUTLS_SHUT_WR);
      gnutls_deinit (connection->session);
      close (connection->fd);
    }

  g_free (connection);
}
