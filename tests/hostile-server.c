/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "hostile-server.h"

#include <errno.h>
#include <glib-unix.h>
#include <gnutls/abstract.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "test-utils.h"

#define RECORD_HEADER_SIZE 5
#define BUFFER_SIZE 16384
#define VALIDITY_SECONDS (3650 * 24 * 3600)
#define PADDING_OID "1.3.6.1.4.1.32473.1.1"

static const guint8 psk_key_bytes[32] = { 0x70, 0x69, 0x6e, 0x74, 0x6c, 0x73 };

/* Certificates ---------------------------------------------------------- */

struct _HostileCert
{
  gatomicrefcount ref_count;
  gnutls_x509_crt_t crt;
  gnutls_x509_privkey_t key;
  GBytes *der;
};

static HostileCert *
cert_wrap (gnutls_x509_crt_t     crt,
           gnutls_x509_privkey_t key)
{
  HostileCert *cert = g_new0 (HostileCert, 1);
  gnutls_datum_t der = { NULL, 0 };

  g_atomic_ref_count_init (&cert->ref_count);
  cert->crt = crt;
  cert->key = key;
  g_assert_cmpint (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_DER, &der), ==, 0);
  cert->der = g_bytes_new (der.data, der.size);
  gnutls_free (der.data);

  return cert;
}

static gnutls_x509_privkey_t
new_key (void)
{
  gnutls_x509_privkey_t key;

  gnutls_x509_privkey_init (&key);
  g_assert_cmpint (gnutls_x509_privkey_generate (
                     key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0),
                   ==, 0);
  return key;
}

static void
set_extensions (gnutls_x509_crt_t crt,
                HostileCertFlags  flags,
                gsize             padding)
{
  gboolean ca = (flags & HOSTILE_CERT_CA) != 0;
  g_autofree guint8 *pad = NULL;

  g_assert_cmpint (gnutls_x509_crt_set_basic_constraints (crt, ca, -1), ==, 0);
  g_assert_cmpint (
    gnutls_x509_crt_set_key_usage (crt, ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
                                             : GNUTLS_KEY_DIGITAL_SIGNATURE),
    ==, 0);
  if (!ca)
    {
      g_assert_cmpint (gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME, "host.test",
                                                             strlen ("host.test"),
                                                             GNUTLS_FSAN_APPEND),
                       ==, 0);
      g_assert_cmpint (gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_SERVER, 0), ==,
                       0);
    }

  if (padding > 0)
    {
      pad = g_malloc (padding);
      memset (pad, 'p', padding);
      g_assert_cmpint (gnutls_x509_crt_set_extension_by_oid (crt, PADDING_OID, pad, padding, 0), ==,
                       0);
    }
}

static HostileCert *
cert_new (const char           *cn,
          HostileCert          *issuer,
          HostileCertFlags      flags,
          gsize                 padding,
          gnutls_x509_privkey_t key)
{
  static guint serial_counter;
  gnutls_x509_crt_t crt;
  time_t now = time (NULL);
  guint32 serial = g_atomic_int_add (&serial_counter, 1) + 1;
  guint8 serial_bytes[4] = { serial >> 24, serial >> 16, serial >> 8, serial };

  gnutls_x509_crt_init (&crt);
  g_assert_cmpint (gnutls_x509_crt_set_version (crt, flags & HOSTILE_CERT_V1 ? 1 : 3), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_set_serial (crt, serial_bytes, sizeof serial_bytes), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_set_activation_time (crt, now - 3600), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_set_expiration_time (crt, now + VALIDITY_SECONDS), ==, 0);
  g_assert_cmpint (
    gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen (cn)), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_set_key (crt, key), ==, 0);
  if (!(flags & HOSTILE_CERT_V1))
    set_extensions (crt, flags, padding);

  g_assert_cmpint (gnutls_x509_crt_sign2 (crt, issuer ? issuer->crt : crt,
                                          issuer ? issuer->key : key, GNUTLS_DIG_SHA256, 0),
                   ==, 0);

  return cert_wrap (crt, key);
}

HostileCert *
hostile_cert_new (const char      *cn,
                  HostileCert     *issuer,
                  HostileCertFlags flags,
                  gsize            padding)
{
  g_assert (issuer == NULL || issuer->key != NULL);

  return cert_new (cn, issuer, flags, padding, new_key ());
}

HostileCert *
hostile_cert_new_with_key (const char      *cn,
                           HostileCert     *issuer,
                           HostileCertFlags flags,
                           HostileCert     *key_of)
{
  gnutls_x509_privkey_t key;

  g_assert_nonnull (key_of->key);
  gnutls_x509_privkey_init (&key);
  g_assert_cmpint (gnutls_x509_privkey_cpy (key, key_of->key), ==, 0);

  return cert_new (cn, issuer, flags, 0, key);
}

static gnutls_datum_t
load_file (const char *name,
           char      **contents)
{
  g_autofree char *path = test_data_path (name);
  gnutls_datum_t datum;
  gsize length;

  g_assert_true (g_file_get_contents (path, contents, &length, NULL));
  datum.data = (guchar *) *contents;
  datum.size = length;

  return datum;
}

HostileCert *
hostile_cert_load (const char *cert_file,
                   const char *key_file)
{
  g_autofree char *cert_pem = NULL;
  g_autofree char *key_pem = NULL;
  gnutls_x509_privkey_t key = NULL;
  gnutls_x509_crt_t crt;
  gnutls_datum_t datum;

  datum = load_file (cert_file, &cert_pem);
  gnutls_x509_crt_init (&crt);
  g_assert_cmpint (gnutls_x509_crt_import (crt, &datum, GNUTLS_X509_FMT_PEM), ==, 0);

  if (key_file != NULL)
    {
      datum = load_file (key_file, &key_pem);
      gnutls_x509_privkey_init (&key);
      g_assert_cmpint (gnutls_x509_privkey_import (key, &datum, GNUTLS_X509_FMT_PEM), ==, 0);
    }

  return cert_wrap (crt, key);
}

HostileCert *
hostile_cert_ref (HostileCert *cert)
{
  g_atomic_ref_count_inc (&cert->ref_count);
  return cert;
}

void
hostile_cert_unref (HostileCert *cert)
{
  if (!g_atomic_ref_count_dec (&cert->ref_count))
    return;

  gnutls_x509_crt_deinit (cert->crt);
  g_clear_pointer (&cert->key, gnutls_x509_privkey_deinit);
  g_bytes_unref (cert->der);
  g_free (cert);
}

GBytes *
hostile_cert_get_der (HostileCert *cert)
{
  return g_bytes_ref (cert->der);
}

char *
hostile_cert_get_pin (HostileCert *cert)
{
  g_autoptr(GError) error = NULL;
  char *pin = pin_tls_spki_pin_for_der (cert->der, &error);

  g_assert_no_error (error);
  return pin;
}

/* What the server presents: a certificate list sent verbatim, and a key. */
typedef struct
{
  gnutls_pcert_st *pcerts;
  guint n_pcerts;
  gnutls_privkey_t privkey;
} Presented;

static void
presented_init (Presented    *presented,
                HostileCert **chain,
                guint         chain_length,
                HostileCert  *key)
{
  guint i;

  presented->pcerts = g_new0 (gnutls_pcert_st, chain_length);
  presented->n_pcerts = chain_length;
  for (i = 0; i < chain_length; i++)
    {
      gsize size;
      gnutls_datum_t der;

      der.data = (guchar *) g_bytes_get_data (chain[i]->der, &size);
      der.size = size;
      g_assert_cmpint (
        gnutls_pcert_import_x509_raw (&presented->pcerts[i], &der, GNUTLS_X509_FMT_DER, 0), ==,
        0);
    }

  g_assert_nonnull (key->key);
  gnutls_privkey_init (&presented->privkey);
  g_assert_cmpint (
    gnutls_privkey_import_x509 (presented->privkey, key->key, GNUTLS_PRIVKEY_IMPORT_COPY), ==, 0);
}

static void
presented_clear (Presented *presented)
{
  guint i;

  for (i = 0; i < presented->n_pcerts; i++)
    gnutls_pcert_deinit (&presented->pcerts[i]);
  g_clear_pointer (&presented->pcerts, g_free);
  g_clear_pointer (&presented->privkey, gnutls_privkey_deinit);
}

/* The server ------------------------------------------------------------ */

struct _HostileServer
{
  HostileOptions options; /* the strings and bytes are the server's own */
  char *priority;
  char *greeting;
  gboolean request_client_certificate;
  Presented presented;
  Presented renegotiated;

  gnutls_certificate_credentials_t hostile_credentials;
  gnutls_certificate_credentials_t good_credentials;
  gnutls_anon_server_credentials_t anon_credentials;
  gnutls_psk_server_credentials_t psk_credentials;

  int listen_fd;
  int stop_pipe[2];
  guint16 port;
  GThread *thread;

  GMutex lock;
  GCond cond;
  int client_fd; /* the connection being served, or -1 */
  guint n_finished;

  /* What the first connection saw. */
  int handshake_result;
  guint client_hellos;
  int alert;
  GByteArray *received;
};

/* One connection, and where its output stands against the cut. */
typedef struct
{
  HostileServer *server;
  int fd;
  gboolean hostile;
  gboolean renegotiating;
  gboolean cut_done;

  guint records;       /* whole records sent */
  guint header_length; /* bytes of the current record's header seen */
  guint8 header[RECORD_HEADER_SIZE];
  gsize body_length;
  gsize body_sent;

  guint client_hellos;
  int alert;
  GByteArray *received;
} Connection;

static gboolean
send_raw (int           fd,
          const guint8 *data,
          gsize         size)
{
  while (size > 0)
    {
      ssize_t sent = send (fd, data, size, MSG_NOSIGNAL);

      if (sent < 0 && errno == EINTR)
        continue;
      if (sent <= 0)
        return FALSE;

      data += sent;
      size -= sent;
    }

  return TRUE;
}

/* Ends the connection with a TCP RST: a close with a zero linger time. */
static void
reset_connection (Connection *connection)
{
  struct linger linger = { 1, 0 };
  HostileServer *server = connection->server;

  setsockopt (connection->fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
  g_mutex_lock (&server->lock);
  close (connection->fd);
  server->client_fd = -1;
  g_mutex_unlock (&server->lock);
  connection->fd = -1;
}

static void
do_cut (Connection *connection,
        HostileCut  cut)
{
  connection->cut_done = TRUE;

  if (cut == HOSTILE_CUT_CLOSE)
    shutdown (connection->fd, SHUT_WR);
  else if (cut == HOSTILE_CUT_RESET)
    reset_connection (connection);
}

/* How many of the @size bytes about to be sent go out before the cut:
 * @size if the cut is not in them. */
static gsize
bytes_before_cut (Connection   *connection,
                  const guint8 *data,
                  gsize         size)
{
  const HostileOptions *options = &connection->server->options;
  gboolean at_cut_record;
  gsize i = 0;

  while (i < size)
    {
      at_cut_record = (connection->records == options->cut_after_records);

      if (connection->header_length < RECORD_HEADER_SIZE)
        {
          if (connection->header_length == 0 && at_cut_record && !options->mid_record)
            return i;

          connection->header[connection->header_length++] = data[i++];
          if (connection->header_length < RECORD_HEADER_SIZE)
            continue;

          connection->body_length = connection->header[3] << 8 | connection->header[4];
          connection->body_sent = 0;
          if (at_cut_record && options->mid_record && connection->body_length / 2 == 0)
            return i;
        }
      else
        {
          gsize take = MIN (connection->body_length - connection->body_sent, size - i);

          if (at_cut_record && options->mid_record
              && connection->body_sent + take >= connection->body_length / 2)
            return i + (connection->body_length / 2 - connection->body_sent);

          connection->body_sent += take;
          i += take;
        }

      if (connection->body_sent == connection->body_length)
        {
          connection->records++;
          connection->header_length = 0;
        }
    }

  return size;
}

static ssize_t
push_cb (gnutls_transport_ptr_t transport,
         const void            *data,
         size_t                 size)
{
  Connection *connection = transport;
  const HostileOptions *options = &connection->server->options;
  gsize passed = size;

  if (connection->fd < 0)
    {
      errno = EPIPE;
      return -1;
    }
  if (connection->cut_done)
    return size;

  /* A cut after the handshake is made by serve_after_handshake (). */
  if (connection->hostile && options->cut != HOSTILE_CUT_NONE && options->after_handshake == NULL)
    passed = bytes_before_cut (connection, data, size);

  if (!send_raw (connection->fd, data, passed))
    {
      errno = EPIPE;
      return -1;
    }

  if (passed < size)
    do_cut (connection, options->cut);
  if (connection->fd < 0)
    {
      errno = EPIPE;
      return -1;
    }

  return size;
}

static ssize_t
pull_cb (gnutls_transport_ptr_t transport,
         void                  *data,
         size_t                 size)
{
  Connection *connection = transport;
  ssize_t received;

  if (connection->fd < 0)
    {
      errno = EPIPE;
      return -1;
    }

  do
    received = recv (connection->fd, data, size, 0);
  while (received < 0 && errno == EINTR);

  /* The receive timeout is the end of a wait, not a reason to try again. */
  if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    errno = ETIMEDOUT;

  return received;
}

static int
client_hello_cb (gnutls_session_t session)
{
  Connection *connection = gnutls_session_get_ptr (session);

  connection->client_hellos++;
  return 0;
}

static int
retrieve_cb (gnutls_session_t             session,
             const gnutls_datum_t        *req_ca_rdn,
             int                          n_req_ca_rdn,
             const gnutls_pk_algorithm_t *pk_algos,
             int                          n_pk_algos,
             gnutls_pcert_st            **pcert,
             unsigned int                *pcert_length,
             gnutls_privkey_t            *privkey)
{
  Connection *connection = gnutls_session_get_ptr (session);
  HostileServer *server = connection->server;
  Presented *presented = connection->renegotiating ? &server->renegotiated : &server->presented;

  *pcert = presented->pcerts;
  *pcert_length = presented->n_pcerts;
  *privkey = presented->privkey;

  return 0;
}

static int
psk_cb (gnutls_session_t session,
        const char      *username,
        gnutls_datum_t  *key)
{
  key->data = gnutls_malloc (sizeof psk_key_bytes);
  key->size = sizeof psk_key_bytes;
  memcpy (key->data, psk_key_bytes, sizeof psk_key_bytes);

  return 0;
}

static gnutls_session_t
session_new (Connection *connection)
{
  HostileServer *server = connection->server;
  HostileKind kind = connection->hostile ? server->options.kind : HOSTILE_TLS;
  const char *priority = connection->hostile ? server->priority : test_server_priority ();
  gnutls_session_t session;

  g_assert_cmpint (gnutls_init (&session, GNUTLS_SERVER | GNUTLS_NO_TICKETS
                                | (kind == HOSTILE_RAWPK ? GNUTLS_ENABLE_RAWPK : 0)),
                   ==, 0);
  g_assert_cmpint (gnutls_priority_set_direct (session, priority, NULL), ==, 0);

  if (!connection->hostile)
    gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, server->good_credentials);
  else if (kind == HOSTILE_ANON)
    gnutls_credentials_set (session, GNUTLS_CRD_ANON, server->anon_credentials);
  else if (kind == HOSTILE_PSK)
    gnutls_credentials_set (session, GNUTLS_CRD_PSK, server->psk_credentials);
  else
    gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, server->hostile_credentials);

  if (connection->hostile && server->request_client_certificate)
    gnutls_certificate_server_set_request (session, GNUTLS_CERT_REQUEST);

  /* GnuTLS limits the handshake it sends as well as the one it receives;
   * only the client's limit is under test. */
  gnutls_handshake_set_max_packet_length (session, 0);
  gnutls_session_set_ptr (session, connection);
  gnutls_transport_set_ptr (session, connection);
  gnutls_transport_set_push_function (session, push_cb);
  gnutls_transport_set_pull_function (session, pull_cb);
  gnutls_handshake_set_post_client_hello_function (session, client_hello_cb);

  return session;
}

static int
handshake (gnutls_session_t session,
           Connection      *connection)
{
  int ret;

  do
    ret = gnutls_handshake (session);
  while (ret < 0 && !gnutls_error_is_fatal (ret));

  if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED)
    connection->alert = gnutls_alert_get (session);

  return ret;
}

static gboolean
send_record (gnutls_session_t session,
             const char      *text)
{
  gsize size = strlen (text);

  while (size > 0)
    {
      ssize_t sent = gnutls_record_send (session, text, size);

      if (sent == GNUTLS_E_INTERRUPTED || sent == GNUTLS_E_AGAIN)
        continue;
      if (sent < 0)
        return FALSE;

      text += sent;
      size -= sent;
    }

  return TRUE;
}

/* Asks a TLS 1.2 client to handshake again, now with the other chain. A
 * client that sends application data instead has declined. */
static void
renegotiate (gnutls_session_t session,
             Connection      *connection)
{
  int ret;

  connection->renegotiating = TRUE;
  if (gnutls_rehandshake (session) < 0)
    return;
  send_record (session, "after-hello-request\n");

  ret = handshake (session, connection);
  g_debug ("renegotiation request: %s", gnutls_strerror (ret));
}

/* Echoes whatever the client sends until it closes. */
static void
serve_records (gnutls_session_t session,
               Connection      *connection)
{
  g_autofree guint8 *buffer = g_malloc (BUFFER_SIZE);

  for (;;)
    {
      ssize_t n = gnutls_record_recv (session, buffer, BUFFER_SIZE);

      if (n == GNUTLS_E_FATAL_ALERT_RECEIVED)
        connection->alert = gnutls_alert_get (session);
      if (n == 0 || (n < 0 && gnutls_error_is_fatal (n)))
        return;
      if (n == GNUTLS_E_REHANDSHAKE || n < 0)
        continue;

      g_byte_array_append (connection->received, buffer, n);
      if (gnutls_record_send (session, buffer, n) < 0)
        return;
    }
}

/* Reads and drops what the client sends, until it closes. */
static void
drain (Connection *connection)
{
  char buffer[BUFFER_SIZE];
  struct pollfd client = { connection->fd, POLLIN, 0 };

  while (connection->fd >= 0 && poll (&client, 1, TEST_TIMEOUT_SECONDS * 1000) > 0
         && recv (connection->fd, buffer, sizeof buffer, 0) > 0)
    ;
}

static void
serve_after_handshake (gnutls_session_t session,
                       Connection      *connection)
{
  const HostileOptions *options = &connection->server->options;
  gsize size;
  const guint8 *data;

  if (connection->hostile && connection->server->greeting != NULL)
    send_record (session, connection->server->greeting);
  if (!connection->hostile)
    {
      serve_records (session, connection);
      return;
    }

  if (options->renegotiate)
    renegotiate (session, connection);

  if (options->after_handshake != NULL)
    {
      data = g_bytes_get_data (options->after_handshake, &size);
      send_raw (connection->fd, data, size);
      do_cut (connection, options->cut);
      drain (connection);
      return;
    }

  serve_records (session, connection);
}

static int
serve_tls (Connection *connection)
{
  gnutls_session_t session = session_new (connection);
  int ret = handshake (session, connection);

  if (ret == 0)
    serve_after_handshake (session, connection);
  else if (connection->cut_done)
    drain (connection);
  else if (ret != GNUTLS_E_FATAL_ALERT_RECEIVED)
    gnutls_alert_send_appropriate (session, ret);

  if (connection->fd >= 0 && !connection->cut_done)
    gnutls_bye (session, GNUTLS_SHUT_WR);
  gnutls_deinit (session);

  return ret;
}

/* Plays a peer that writes raw bytes instead of TLS. */
static void
serve_raw (Connection *connection)
{
  const HostileOptions *options = &connection->server->options;
  struct pollfd client = { connection->fd, POLLIN, 0 };
  char buffer[BUFFER_SIZE];
  const guint8 *data = NULL;
  gsize size = 0;

  if (!options->reply_first
      && (poll (&client, 1, TEST_TIMEOUT_SECONDS * 1000) <= 0
          || recv (connection->fd, buffer, sizeof buffer, 0) <= 0))
    return;

  if (options->reply != NULL)
    data = g_bytes_get_data (options->reply, &size);
  if (!send_raw (connection->fd, data, size))
    return;

  do_cut (connection, options->cut);
  drain (connection);
}

static void
set_timeouts (int fd)
{
  struct timeval timeout = { TEST_TIMEOUT_SECONDS, 0 };

  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

static void
serve_connection (HostileServer *server,
                  int            fd)
{
  Connection connection = { server, fd, server->n_finished == 0 };
  int result = 0;

  connection.alert = -1;
  connection.received = g_byte_array_new ();
  set_timeouts (fd);

  if (connection.hostile && server->options.kind == HOSTILE_RAW)
    serve_raw (&connection);
  else
    result = serve_tls (&connection);

  /* Closing with the client's last bytes unread would reset the
   * connection, and the client might lose what the server sent last: shut
   * down, and close once the client has. */
  if (connection.fd >= 0)
    {
      shutdown (connection.fd, SHUT_WR);
      drain (&connection);
    }

  g_mutex_lock (&server->lock);
  if (connection.fd >= 0)
    close (connection.fd);
  server->client_fd = -1;
  if (connection.hostile)
    {
      server->handshake_result = result;
      server->client_hellos = connection.client_hellos;
      server->alert = connection.alert;
      g_byte_array_append (server->received, connection.received->data, connection.received->len);
    }
  server->n_finished++;
  g_cond_broadcast (&server->cond);
  g_mutex_unlock (&server->lock);

  g_byte_array_unref (connection.received);
}

/* Waits for a connection or for the stop request: -1 when stopping. */
static int
accept_client (HostileServer *server)
{
  int fd = test_accept_until_stopped (server->listen_fd, server->stop_pipe[0]);

  if (fd < 0)
    return -1;

  g_mutex_lock (&server->lock);
  server->client_fd = fd;
  g_mutex_unlock (&server->lock);

  return fd;
}

static gpointer
server_thread (gpointer data)
{
  HostileServer *server = data;
  int fd;

  while ((fd = accept_client (server)) >= 0)
    serve_connection (server, fd);

  return NULL;
}

static void
listen_on_loopback (HostileServer *server)
{
  struct sockaddr_in address = { 0 };
  socklen_t length = sizeof address;

  server->listen_fd = socket (AF_INET, SOCK_STREAM, 0);
  g_assert_cmpint (server->listen_fd, >=, 0);

  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (server->listen_fd, (struct sockaddr *) &address, sizeof address), ==, 0);
  g_assert_cmpint (listen (server->listen_fd, 8), ==, 0);
  g_assert_true (g_unix_set_fd_nonblocking (server->listen_fd, TRUE, NULL));
  g_assert_cmpint (getsockname (server->listen_fd, (struct sockaddr *) &address, &length), ==, 0);
  server->port = ntohs (address.sin_port);
}

static void
set_rawpk_key (HostileServer *server,
               HostileCert   *cert)
{
  gnutls_pubkey_t pubkey;
  gnutls_datum_t spki = { NULL, 0 };
  gnutls_datum_t key = { NULL, 0 };

  gnutls_pubkey_init (&pubkey);
  g_assert_cmpint (gnutls_pubkey_import_x509 (pubkey, cert->crt, 0), ==, 0);
  g_assert_cmpint (gnutls_pubkey_export2 (pubkey, GNUTLS_X509_FMT_PEM, &spki), ==, 0);
  g_assert_cmpint (gnutls_x509_privkey_export2 (cert->key, GNUTLS_X509_FMT_PEM, &key), ==, 0);
  g_assert_cmpint (gnutls_certificate_set_rawpk_key_mem (server->hostile_credentials, &spki, &key,
                                                         GNUTLS_X509_FMT_PEM, NULL, 0, NULL, 0, 0),
                   >=, 0);

  gnutls_free (spki.data);
  gnutls_free (key.data);
  gnutls_pubkey_deinit (pubkey);
}

static void
load_credentials (HostileServer        *server,
                  const HostileOptions *options)
{
  g_autoptr(HostileCert) leaf1 = hostile_cert_load ("leaf1.pem", "leaf1.key");
  g_autofree char *chain = test_data_path ("leaf1-chain.pem");
  g_autofree char *key = test_data_path ("leaf1.key");
  HostileCert *default_chain[] = { leaf1 };

  gnutls_certificate_allocate_credentials (&server->good_credentials);
  g_assert_cmpint (gnutls_certificate_set_x509_key_file (server->good_credentials, chain, key,
                                                         GNUTLS_X509_FMT_PEM),
                   >=, 0);

  gnutls_certificate_allocate_credentials (&server->hostile_credentials);
  if (options->client_ca != NULL)
    {
      g_autofree char *ca = test_data_path (options->client_ca);

      g_assert_cmpint (gnutls_certificate_set_x509_trust_file (server->hostile_credentials, ca,
                                                               GNUTLS_X509_FMT_PEM),
                       ==, 1);
    }
  if (options->kind == HOSTILE_RAWPK)
    set_rawpk_key (server, options->key ? options->key : leaf1);
  else
    gnutls_certificate_set_retrieve_function2 (server->hostile_credentials, retrieve_cb);

  if (options->chain != NULL)
    presented_init (&server->presented, options->chain, options->chain_length,
                    options->key ? options->key : options->chain[0]);
  else
    presented_init (&server->presented, default_chain, 1, leaf1);
  if (options->renegotiate)
    presented_init (
      &server->renegotiated, options->renegotiate_chain, options->renegotiate_chain_length,
      options->renegotiate_key ? options->renegotiate_key : options->renegotiate_chain[0]);

  gnutls_anon_allocate_server_credentials (&server->anon_credentials);
  gnutls_psk_allocate_server_credentials (&server->psk_credentials);
  gnutls_psk_set_server_credentials_function (server->psk_credentials, psk_cb);
}

HostileServer *
hostile_server_new (const HostileOptions *options)
{
  HostileServer *server = g_new0 (HostileServer, 1);

  load_credentials (server, options);

  /* Keep only what serving needs, as the server's own copies. */
  server->options = *options;
  server->options.priority = NULL;
  server->options.greeting = NULL;
  server->options.chain = NULL;
  server->options.key = NULL;
  server->options.renegotiate_chain = NULL;
  server->options.renegotiate_key = NULL;
  server->options.client_ca = NULL;
  server->request_client_certificate = (options->client_ca != NULL);
  if (options->reply != NULL)
    server->options.reply = g_bytes_ref (options->reply);
  if (options->after_handshake != NULL)
    server->options.after_handshake = g_bytes_ref (options->after_handshake);
  server->priority = g_strdup (options->priority ? options->priority : test_server_priority ());
  server->greeting = g_strdup (options->greeting);

  g_mutex_init (&server->lock);
  g_cond_init (&server->cond);
  server->client_fd = -1;
  server->alert = -1;
  server->received = g_byte_array_new ();
  g_assert_cmpint (pipe (server->stop_pipe), ==, 0);
  listen_on_loopback (server);
  server->thread = g_thread_new ("hostile-server", server_thread, server);

  return server;
}

guint16
hostile_server_get_port (HostileServer *server)
{
  return server->port;
}

void
hostile_server_wait (HostileServer *server,
                     guint          n)
{
  gint64 deadline = g_get_monotonic_time () + TEST_TIMEOUT_SECONDS * G_TIME_SPAN_SECOND;
  gboolean in_time = TRUE;

  g_mutex_lock (&server->lock);
  while (in_time && server->n_finished < n)
    in_time = g_cond_wait_until (&server->cond, &server->lock, deadline);
  g_mutex_unlock (&server->lock);

  g_assert_true (in_time);
}

int
hostile_server_get_handshake_result (HostileServer *server)
{
  int result;

  g_mutex_lock (&server->lock);
  result = server->handshake_result;
  g_mutex_unlock (&server->lock);

  return result;
}

guint
hostile_server_get_client_hellos (HostileServer *server)
{
  guint n;

  g_mutex_lock (&server->lock);
  n = server->client_hellos;
  g_mutex_unlock (&server->lock);

  return n;
}

int
hostile_server_get_alert (HostileServer *server)
{
  int alert;

  g_mutex_lock (&server->lock);
  alert = server->alert;
  g_mutex_unlock (&server->lock);

  return alert;
}

GBytes *
hostile_server_get_received (HostileServer *server)
{
  GBytes *received;

  g_mutex_lock (&server->lock);
  received = g_bytes_new (server->received->data, server->received->len);
  g_mutex_unlock (&server->lock);

  return received;
}

/* Stops the thread: wakes its accept() and ends a connection it may still
 * be serving. */
void
hostile_server_free (HostileServer *server)
{
  g_assert_cmpint (write (server->stop_pipe[1], "", 1), ==, 1);
  g_mutex_lock (&server->lock);
  if (server->client_fd >= 0)
    shutdown (server->client_fd, SHUT_RDWR);
  g_mutex_unlock (&server->lock);
  g_thread_join (server->thread);

  close (server->listen_fd);
  close (server->stop_pipe[0]);
  close (server->stop_pipe[1]);
  g_mutex_clear (&server->lock);
  g_cond_clear (&server->cond);

  presented_clear (&server->presented);
  presented_clear (&server->renegotiated);
  gnutls_certificate_free_credentials (server->hostile_credentials);
  gnutls_certificate_free_credentials (server->good_credentials);
  gnutls_anon_free_server_credentials (server->anon_credentials);
  gnutls_psk_free_server_credentials (server->psk_credentials);

  g_clear_pointer (&server->options.reply, g_bytes_unref);
  g_clear_pointer (&server->options.after_handshake, g_bytes_unref);
  g_byte_array_unref (server->received);
  g_free (server->priority);
  g_free (server->greeting);
  g_free (server);
}
