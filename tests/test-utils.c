/* SPDX-License-Identifier: LGPL-2.1-or-later */

#define _GNU_SOURCE /* POLLRDHUP */

#include "test-utils.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define TIMEOUT_MS (TEST_TIMEOUT_SECONDS * 1000)
#define RECORD_BUFFER_SIZE 16384

guint
test_timeout_seconds (void)
{
  const char *scale = g_getenv ("PINTLS_TEST_TIMEOUT_SCALE");
  guint64 factor = 1;

  if (scale != NULL && !g_ascii_string_to_unsigned (scale, 10, 1, 100, &factor, NULL))
    g_error ("PINTLS_TEST_TIMEOUT_SCALE must be a number from 1 to 100");

  return 30 * factor;
}

/* Data files ----------------------------------------------------------- */

char *
test_data_path (const char *name)
{
  const char *data_dir = g_getenv ("PINTLS_DATA_DIR");

  if (data_dir != NULL)
    return g_build_filename (data_dir, "certs", name, NULL);

  return g_test_build_filename (G_TEST_DIST, "..", "data", "certs", name, NULL);
}

GPtrArray *
test_load_der_chain (const char *name)
{
  g_autofree char *path = test_data_path (name);
  g_autofree char *contents = NULL;
  gnutls_x509_crt_t *certs = NULL;
  unsigned int n_certs = 0;
  gnutls_datum_t pem;
  GPtrArray *chain;
  gsize length;
  unsigned int i;

  g_assert_true (g_file_get_contents (path, &contents, &length, NULL));
  pem.data = (unsigned char *) contents;
  pem.size = length;
  g_assert_cmpint (gnutls_x509_crt_list_import2 (&certs, &n_certs, &pem,
                                                 GNUTLS_X509_FMT_PEM, 0), ==, 0);

  chain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (i = 0; i < n_certs; i++)
    {
      gnutls_datum_t der = { NULL, 0 };

      g_assert_cmpint (gnutls_x509_crt_export2 (certs[i], GNUTLS_X509_FMT_DER, &der), ==, 0);
      g_ptr_array_add (chain, g_bytes_new (der.data, der.size));
      gnutls_free (der.data);
      gnutls_x509_crt_deinit (certs[i]);
    }
  gnutls_free (certs);

  return chain;
}

char *
test_certtool_pin (const char *name)
{
  g_autofree char *path = test_data_path (name);
  const char *argv[] = { "certtool", "-i", "--infile", path, NULL };
  g_autofree char *output = NULL;
  g_autofree char *digest = NULL;
  g_autoptr(GError) error = NULL;
  const char *start;
  int status;

  g_spawn_sync (NULL, (char **) argv, NULL,
                G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                &output, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));

  start = strstr (output, "pin-sha256:");
  g_assert_nonnull (start);
  start += strlen ("pin-sha256:");
  digest = g_strndup (start, strcspn (start, " \t\r\n"));

  return g_strconcat ("sha256/", digest, NULL);
}

PinTlsPinSet *
test_pins_for (const char *first_name,
               ...)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) pins = NULL;
  g_autoptr(GError) error = NULL;
  PinTlsPinSet *set;
  const char *name;
  va_list args;

  va_start (args, first_name);
  for (name = first_name; name != NULL; name = va_arg (args, const char *))
    {
      g_autofree char *pin = test_certtool_pin (name);

      g_strv_builder_add (builder, pin);
    }
  va_end (args);

  pins = g_strv_builder_end (builder);
  set = pin_tls_pin_set_new ((const char *const *) pins, &error);
  g_assert_no_error (error);

  return set;
}

const char *
test_tls_version (void)
{
  const char *version = g_getenv ("PINTLS_TEST_TLS_VERSION");

  if (version == NULL || *version == '\0')
    return NULL;

  g_assert_true (g_str_equal (version, "1.2") || g_str_equal (version, "1.3"));
  return version;
}

const char *
test_server_priority (void)
{
  const char *version = test_tls_version ();

  if (version == NULL)
    return "NORMAL";
  if (g_str_equal (version, "1.2"))
    return "NORMAL:-VERS-ALL:+VERS-TLS1.2";

  return "NORMAL:-VERS-ALL:+VERS-TLS1.3";
}

/* The server ----------------------------------------------------------- */

/* What the server saw in one connection. */
typedef struct
{
  int handshake_result;
  int alert;
  GByteArray *received;
  gboolean got_close_notify;
  gboolean got_client_hello;
  char *server_name;
  gboolean resumed;
  gboolean renegotiated;
  GBytes *tls_unique;
  GBytes *tls_exporter;
} TestServerReport;

struct _TestServer
{
  char *chain;
  char *key;
  char *priority_string;
  gboolean tickets;
  gboolean anonymous;
  char *greeting;
  gboolean early_greeting;
  gboolean no_close_notify;
  char *alpn;
  gboolean no_tls;
  gboolean session_cache;
  gboolean concurrent;
  gboolean renegotiate;
  char *renegotiate_chain;
  char *renegotiate_key;
  char *request_certificate;
  char *http_body;
  TestServerPause pause;

  gnutls_certificate_credentials_t certificate_credentials;
  gnutls_certificate_credentials_t renegotiate_credentials;
  gnutls_anon_server_credentials_t anon_credentials;
  gnutls_priority_t priority;
  gnutls_datum_t ticket_key;

  int listen_fd;
  int stop_pipe[2];
  guint16 port;
  char *address;
  GThread *thread;

  GMutex lock;
  GCond cond;
  GHashTable *client_fds;    /* the connections being served */
  GPtrArray *client_threads; /* concurrent: one per connection */
  GHashTable *sessions;      /* session_cache: GBytes ID -> GBytes data */
  guint n_finished;
  guint n_reported;
  guint n_handshakes;
  gsize received_total;
  TestServerReport report; /* of the connection that finished last */
  gboolean resumed;        /* pause: the test let the server go on */
  gboolean reset;          /* or asked for a reset */
  gsize skip;
};

static void
report_clear (TestServerReport *report)
{
  g_clear_pointer (&report->received, g_byte_array_unref);
  g_clear_pointer (&report->server_name, g_free);
  g_clear_pointer (&report->tls_unique, g_bytes_unref);
  g_clear_pointer (&report->tls_exporter, g_bytes_unref);
}

static void
report_init (TestServerReport *report)
{
  report->handshake_result = 0;
  report->alert = -1;
  report->received = g_byte_array_new ();
  report->got_close_notify = FALSE;
  report->got_client_hello = FALSE;
  report->server_name = NULL;
  report->resumed = FALSE;
  report->renegotiated = FALSE;
  report->tls_unique = NULL;
  report->tls_exporter = NULL;
}

static int
client_hello_cb (gnutls_session_t session)
{
  TestServerReport *report = gnutls_session_get_ptr (session);
  char name[256];
  size_t size = sizeof name;
  unsigned int type;

  report->got_client_hello = TRUE;
  if (gnutls_server_name_get (session, name, &size, &type, 0) == 0
      && type == GNUTLS_NAME_DNS)
    report->server_name = g_strndup (name, size);

  return 0;
}

/* The session-ID cache, for TLS 1.2 resumption without tickets. */
static GBytes *
datum_to_bytes (gnutls_datum_t datum)
{
  return g_bytes_new (datum.data, datum.size);
}

static int
session_store_cb (void          *data,
                  gnutls_datum_t key,
                  gnutls_datum_t value)
{
  TestServer *server = data;

  g_mutex_lock (&server->lock);
  g_hash_table_replace (server->sessions, datum_to_bytes (key), datum_to_bytes (value));
  g_mutex_unlock (&server->lock);

  return 0;
}

static gnutls_datum_t
session_retrieve_cb (void          *data,
                     gnutls_datum_t key)
{
  TestServer *server = data;
  g_autoptr(GBytes) id = datum_to_bytes (key);
  gnutls_datum_t value = { NULL, 0 };
  GBytes *stored;

  g_mutex_lock (&server->lock);
  stored = g_hash_table_lookup (server->sessions, id);
  if (stored != NULL)
    {
      value.size = g_bytes_get_size (stored);
      value.data = gnutls_malloc (value.size);
      memcpy (value.data, g_bytes_get_data (stored, NULL), value.size);
    }
  g_mutex_unlock (&server->lock);

  return value;
}

static int
session_remove_cb (void          *data,
                   gnutls_datum_t key)
{
  TestServer *server = data;
  g_autoptr(GBytes) id = datum_to_bytes (key);
  gboolean removed;

  g_mutex_lock (&server->lock);
  removed = g_hash_table_remove (server->sessions, id);
  g_mutex_unlock (&server->lock);

  return removed ? 0 : -1;
}

static gnutls_session_t
server_session_new (TestServer       *server,
                    int               fd,
                    TestServerReport *report)
{
  gnutls_session_t session;

  g_assert_cmpint (gnutls_init (&session,
                                GNUTLS_SERVER | GNUTLS_NO_SIGNAL
                                | (server->tickets ? 0 : GNUTLS_NO_TICKETS)
                                | (server->early_greeting ? GNUTLS_ENABLE_EARLY_START
                                                          : 0)),
                   ==, 0);
  g_assert_cmpint (gnutls_priority_set (session, server->priority), ==, 0);
  if (server->anonymous)
    gnutls_credentials_set (session, GNUTLS_CRD_ANON, server->anon_credentials);
  else
    gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE,
                            server->certificate_credentials);
  if (server->tickets)
    gnutls_session_ticket_enable_server (session, &server->ticket_key);
  if (server->alpn != NULL)
    {
      gnutls_datum_t protocol = { (unsigned char *) server->alpn, strlen (server->alpn) };

      g_assert_cmpint (gnutls_alpn_set_protocols (session, &protocol, 1, 0), ==, 0);
    }

  gnutls_transport_set_int (session, fd);
  gnutls_handshake_set_timeout (session, TIMEOUT_MS);
  gnutls_record_set_timeout (session, TIMEOUT_MS);
  gnutls_session_set_ptr (session, report);
  gnutls_handshake_set_post_client_hello_function (session, client_hello_cb);
  if (server->request_certificate != NULL)
    gnutls_certificate_server_set_request (session, GNUTLS_CERT_REQUEST);
  if (server->session_cache)
    {
      gnutls_db_set_ptr (session, server);
      gnutls_db_set_store_function (session, session_store_cb);
      gnutls_db_set_retrieve_function (session, session_retrieve_cb);
      gnutls_db_set_remove_function (session, session_remove_cb);
    }

  return session;
}

static gboolean
send_all (gnutls_session_t session,
          const guint8    *data,
          gsize            size)
{
  while (size > 0)
    {
      ssize_t sent = gnutls_record_send (session, data, size);

      if (sent == GNUTLS_E_INTERRUPTED)
        continue;
      if (sent < 0)
        return FALSE;

      data += sent;
      size -= sent;
    }

  return TRUE;
}

static int
run_handshake (gnutls_session_t session)
{
  int ret;

  do
    ret = gnutls_handshake (session);
  while (ret < 0 && !gnutls_error_is_fatal (ret));

  return ret;
}

/* The client answered a request to renegotiate: show it the other chain,
 * if there is one. */
static gboolean
renegotiate (TestServer       *server,
             gnutls_session_t  session,
             TestServerReport *report)
{
  report->renegotiated = TRUE;
  if (server->renegotiate_credentials != NULL)
    gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE,
                            server->renegotiate_credentials);

  return run_handshake (session) == 0;
}

/* Reads until the client closes, echoing unless told not to. */
static void
serve_records (TestServer       *server,
               gnutls_session_t  session,
               TestServerReport *report)
{
  g_autofree guint8 *buffer = g_malloc (RECORD_BUFFER_SIZE);

  for (;;)
    {
      ssize_t n = gnutls_record_recv (session, buffer, RECORD_BUFFER_SIZE);

      if (n == GNUTLS_E_REHANDSHAKE && !renegotiate (server, session, report))
        return;
      if (n == 0)
        {
          report->got_close_notify = TRUE;
          return;
        }
      if (n == GNUTLS_E_FATAL_ALERT_RECEIVED)
        report->alert = gnutls_alert_get (session);
      if (n < 0 && gnutls_error_is_fatal (n))
        return;
      if (n < 0)
        continue;

      g_byte_array_append (report->received, buffer, n);
      if (!server->no_close_notify && server->pause == TEST_SERVER_PAUSE_NONE
          && !send_all (session, buffer, n))
        return;
    }
}

static GBytes *
channel_binding (gnutls_session_t         session,
                 gnutls_channel_binding_t type)
{
  gnutls_datum_t data = { NULL, 0 };
  GBytes *bytes;

  if (gnutls_session_channel_binding (session, type, &data) < 0)
    return NULL;

  bytes = g_bytes_new (data.data, data.size);
  gnutls_free (data.data);

  return bytes;
}

static void
report_session (gnutls_session_t  session,
                TestServerReport *report)
{
  report->tls_unique = channel_binding (session, GNUTLS_CB_TLS_UNIQUE);
  report->tls_exporter = channel_binding (session, GNUTLS_CB_TLS_EXPORTER);
}

/* Reads one HTTP request, whatever it asks for, and answers it with the
 * server's body. */
static void
serve_http (TestServer       *server,
            gnutls_session_t  session,
            TestServerReport *report)
{
  g_autofree char *response = NULL;
  guint8 buffer[4096];

  while (report->received->len < 4
         || g_strstr_len ((const char *) report->received->data, report->received->len,
                          "\r\n\r\n") == NULL)
    {
      ssize_t n = gnutls_record_recv (session, buffer, sizeof buffer);

      if (n == GNUTLS_E_FATAL_ALERT_RECEIVED)
        report->alert = gnutls_alert_get (session);
      if (n == 0 || (n < 0 && gnutls_error_is_fatal (n)))
        return;
      if (n > 0)
        g_byte_array_append (report->received, buffer, n);
    }

  response = g_strdup_printf ("HTTP/1.1 200 OK\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: %zu\r\n"
                              "Connection: close\r\n"
                              "\r\n"
                              "%s",
                              strlen (server->http_body), server->http_body);
  send_all (session, (const guint8 *) response, strlen (response));
  gnutls_bye (session, GNUTLS_SHUT_WR);
}

/* Serves a client with early_greeting: the handshake returns once the
 * server's flight is out (GnuTLS's early start), and the greeting goes
 * out at once, as data a TLS 1.3 server may send before the client's
 * Finished. The client has not read it if it stopped at the server's
 * certificate. Once the client has hung up, the greeting goes out again,
 * as from a server that keeps writing whatever the client does; a TCP
 * reset makes that write fail, and the server gives up without reading,
 * as most servers do. Otherwise it reads the client's Finished or alert. */
static void
serve_early_greeting (TestServer       *server,
                      int               fd,
                      gnutls_session_t  session,
                      TestServerReport *report)
{
  const guint8 *greeting = (const guint8 *) server->greeting;
  struct pollfd client = { fd, POLLRDHUP, 0 };
  guint8 buffer[256];
  int ret;

  ret = run_handshake (session);
  if (ret == 0)
    g_assert_true (gnutls_session_get_flags (session) & GNUTLS_SFLAGS_EARLY_START);
  if (ret == 0 && !send_all (session, greeting, strlen (server->greeting)))
    ret = GNUTLS_E_PUSH_ERROR;

  if (ret == 0)
    g_assert_cmpint (poll (&client, 1, TIMEOUT_MS), ==, 1);
  if (ret == 0 && !send_all (session, greeting, strlen (server->greeting)))
    ret = GNUTLS_E_PUSH_ERROR;

  while (ret == 0)
    {
      ssize_t n = gnutls_record_recv (session, buffer, sizeof buffer);

      if (n == 0 || (n < 0 && gnutls_error_is_fatal (n)))
        ret = n;
      if (n > 0)
        g_byte_array_append (report->received, buffer, n);
    }

  report->handshake_result = ret;
  if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED)
    report->alert = gnutls_alert_get (session);
}

/* Waits for test_server_resume() or test_server_reset(), then reads and
 * drops what the test asked to skip. FALSE if the connection is to end,
 * reset. */
static gboolean
wait_for_resume (TestServer *server,
                 int         fd)
{
  gint64 end = g_get_monotonic_time () + TEST_TIMEOUT_SECONDS * G_TIME_SPAN_SECOND;
  struct linger linger = { 1, 0 };
  struct pollfd client = { fd, POLLIN, 0 };
  char buffer[4096];
  gboolean reset;
  gsize skip;

  g_mutex_lock (&server->lock);
  while (!server->resumed && g_cond_wait_until (&server->cond, &server->lock, end))
    ;
  reset = server->reset;
  skip = server->skip;
  server->resumed = server->reset = FALSE;
  g_mutex_unlock (&server->lock);

  if (reset)
    {
      setsockopt (fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
      return FALSE;
    }

  while (skip > 0 && poll (&client, 1, TIMEOUT_MS) > 0)
    {
      ssize_t n = read (fd, buffer, MIN (skip, sizeof buffer));

      if (n <= 0)
        return FALSE;
      skip -= n;
    }

  return TRUE;
}

static void
serve_connection (TestServer       *server,
                  int               fd,
                  TestServerReport *report)
{
  gnutls_session_t session;
  int ret;

  if (server->pause == TEST_SERVER_PAUSE_BEFORE_HANDSHAKE
      && !wait_for_resume (server, fd))
    return;

  session = server_session_new (server, fd, report);

  if (server->early_greeting)
    {
      serve_early_greeting (server, fd, session, report);
      gnutls_deinit (session);
      return;
    }

  ret = run_handshake (session);
  report->handshake_result = ret;
  report->resumed = gnutls_session_is_resumed (session);
  if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED)
    report->alert = gnutls_alert_get (session);
  if (ret == 0)
    {
      report_session (session, report);
      g_mutex_lock (&server->lock);
      server->n_handshakes++;
      g_mutex_unlock (&server->lock);
    }

  if (ret == 0 && server->http_body != NULL)
    {
      serve_http (server, session, report);
      gnutls_deinit (session);
      return;
    }

  if (ret == 0 && server->greeting != NULL)
    send_all (session, (const guint8 *) server->greeting, strlen (server->greeting));
  if (ret == 0 && server->renegotiate)
    g_assert_cmpint (gnutls_rehandshake (session), ==, 0);
  if (ret == 0 && server->no_close_notify)
    shutdown (fd, SHUT_WR);
  if (ret == 0 && server->pause == TEST_SERVER_PAUSE_AFTER_HANDSHAKE
      && !wait_for_resume (server, fd))
    ret = -1;
  if (ret == 0)
    serve_records (server, session, report);

  if (report->got_close_notify && !server->no_close_notify)
    gnutls_bye (session, GNUTLS_SHUT_WR);
  gnutls_deinit (session);
}

/* Plays a server that does not speak TLS: whatever the client sends is
 * read and dropped until it closes. */
static void
serve_plain_text (TestServer       *server,
                  int               fd,
                  TestServerReport *report)
{
  struct pollfd client = { fd, POLLIN, 0 };
  char buffer[4096];

  if (server->greeting != NULL
      && write (fd, server->greeting, strlen (server->greeting)) < 0)
    return;

  while (poll (&client, 1, TIMEOUT_MS) > 0 && read (fd, buffer, sizeof buffer) > 0)
    ;
}

/* GnuTLS times out reads itself; a client that stops reading must not
 * block the server's writes for ever either. */
static void
set_send_timeout (int fd)
{
  struct timeval timeout = { TEST_TIMEOUT_SECONDS, 0 };

  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

/* Waits for a connection or for the stop request: -1 when stopping. */
int
test_accept_until_stopped (int listen_fd,
                           int stop_fd)
{
  struct pollfd fds[2] = {
    { listen_fd, POLLIN, 0 },
    { stop_fd, POLLIN, 0 },
  };

  for (;;)
    {
      int fd;

      if (poll (fds, G_N_ELEMENTS (fds), -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      if (fds[1].revents != 0)
        return -1;

      fd = accept (listen_fd, NULL, NULL);
      if (fd >= 0)
        return fd;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED
          && errno != EINTR)
        return -1;
    }
}

static int
accept_client (TestServer *server)
{
  return test_accept_until_stopped (server->listen_fd, server->stop_pipe[0]);
}

/* Serves one connection and reports on it; @fd is the server's until
 * then, when it closes it. */
static void
serve_client (TestServer *server,
              int         fd)
{
  TestServerReport report;

  report_init (&report);
  if (server->no_tls)
    serve_plain_text (server, fd, &report);
  else
    serve_connection (server, fd, &report);

  g_mutex_lock (&server->lock);
  g_hash_table_remove (server->client_fds, GINT_TO_POINTER (fd));
  close (fd);
  report_clear (&server->report);
  server->report = report;
  server->received_total += report.received->len;
  server->n_finished++;
  g_cond_broadcast (&server->cond);
  g_mutex_unlock (&server->lock);
}

typedef struct
{
  TestServer *server;
  int fd;
} ClientJob;

static gpointer
client_thread (gpointer data)
{
  ClientJob *job = data;

  serve_client (job->server, job->fd);
  g_free (job);

  return NULL;
}

static gpointer
server_thread (gpointer data)
{
  TestServer *server = data;
  int fd;

  while ((fd = accept_client (server)) >= 0)
    {
      set_send_timeout (fd);
      g_mutex_lock (&server->lock);
      g_hash_table_add (server->client_fds, GINT_TO_POINTER (fd));
      g_mutex_unlock (&server->lock);

      if (server->concurrent)
        {
          ClientJob *job = g_new (ClientJob, 1);

          job->server = server;
          job->fd = fd;
          g_mutex_lock (&server->lock);
          g_ptr_array_add (server->client_threads,
                           g_thread_new ("test-server-client", client_thread, job));
          g_mutex_unlock (&server->lock);
        }
      else
        {
          serve_client (server, fd);
        }
    }

  return NULL;
}

static void
load_credentials (TestServer *server)
{
  g_autofree char *chain = NULL;
  g_autofree char *key = NULL;

  if (server->no_tls)
    return;

  if (server->anonymous)
    {
      g_assert_cmpint (gnutls_anon_allocate_server_credentials (&server->anon_credentials),
                       ==, 0);
      return;
    }

  chain = test_data_path (server->chain);
  key = test_data_path (server->key);
  g_assert_cmpint (gnutls_certificate_allocate_credentials (&server->certificate_credentials),
                   ==, 0);
  g_assert_cmpint (gnutls_certificate_set_x509_key_file (server->certificate_credentials,
                                                         chain, key, GNUTLS_X509_FMT_PEM),
                   >=, 0);
  if (server->request_certificate != NULL)
    {
      g_autofree char *authorities = test_data_path (server->request_certificate);

      g_assert_cmpint (gnutls_certificate_set_x509_trust_file (server->certificate_credentials,
                                                               authorities,
                                                               GNUTLS_X509_FMT_PEM),
                       >, 0);
    }
  if (server->renegotiate_chain == NULL)
    return;

  g_free (chain);
  g_free (key);
  chain = test_data_path (server->renegotiate_chain);
  key = test_data_path (server->renegotiate_key);
  g_assert_cmpint (gnutls_certificate_allocate_credentials (&server->renegotiate_credentials),
                   ==, 0);
  g_assert_cmpint (gnutls_certificate_set_x509_key_file (server->renegotiate_credentials,
                                                         chain, key, GNUTLS_X509_FMT_PEM),
                   >=, 0);
}

static void
listen_on_loopback (TestServer *server)
{
  struct sockaddr_in address = { 0 };
  socklen_t length = sizeof address;

  server->listen_fd = socket (AF_INET, SOCK_STREAM, 0);
  g_assert_cmpint (server->listen_fd, >=, 0);

  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  address.sin_port = 0;
  g_assert_cmpint (bind (server->listen_fd, (struct sockaddr *) &address,
                         sizeof address), ==, 0);
  g_assert_cmpint (listen (server->listen_fd, server->concurrent ? SOMAXCONN : 8), ==, 0);
  g_assert_true (g_unix_set_fd_nonblocking (server->listen_fd, TRUE, NULL));

  g_assert_cmpint (getsockname (server->listen_fd, (struct sockaddr *) &address,
                                &length), ==, 0);
  server->port = ntohs (address.sin_port);
  server->address = g_strdup_printf ("127.0.0.1:%u", server->port);
}

TestServer *
test_server_new (const TestServerOptions *options)
{
  TestServer *server = g_new0 (TestServer, 1);

  server->chain = g_strdup (options->chain);
  server->key = g_strdup (options->key);
  server->priority_string = g_strdup (options->priority ? options->priority
                                                        : test_server_priority ());
  server->tickets = options->tickets;
  server->anonymous = options->anonymous;
  server->greeting = g_strdup (options->greeting);
  server->early_greeting = options->early_greeting;
  server->no_close_notify = options->no_close_notify;
  server->alpn = g_strdup (options->alpn);
  server->no_tls = options->no_tls;
  server->http_body = g_strdup (options->http_body);
  server->pause = options->pause;
  server->session_cache = options->session_cache;
  server->concurrent = options->concurrent;
  server->renegotiate = options->renegotiate;
  server->renegotiate_chain = g_strdup (options->renegotiate_chain);
  server->renegotiate_key = g_strdup (options->renegotiate_key);
  server->request_certificate = g_strdup (options->request_certificate);

  load_credentials (server);
  g_assert_cmpint (gnutls_priority_init (&server->priority, server->priority_string, NULL),
                   ==, 0);
  if (server->tickets)
    g_assert_cmpint (gnutls_session_ticket_key_generate (&server->ticket_key), ==, 0);

  g_mutex_init (&server->lock);
  g_cond_init (&server->cond);
  server->client_fds = g_hash_table_new (NULL, NULL);
  server->client_threads = g_ptr_array_new ();
  server->sessions = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                            (GDestroyNotify) g_bytes_unref,
                                            (GDestroyNotify) g_bytes_unref);
  report_init (&server->report);
  g_assert_cmpint (pipe (server->stop_pipe), ==, 0);
  listen_on_loopback (server);

  server->thread = g_thread_new ("test-server", server_thread, server);

  return server;
}

guint16
test_server_get_port (TestServer *server)
{
  return server->port;
}

const char *
test_server_get_address (TestServer *server)
{
  return server->address;
}

void
test_server_wait (TestServer *server)
{
  test_server_wait_n (server, 1);
}

void
test_server_wait_n (TestServer *server,
                    guint       n)
{
  gint64 deadline = g_get_monotonic_time () + TEST_TIMEOUT_SECONDS * G_TIME_SPAN_SECOND;
  gboolean finished = TRUE;

  g_mutex_lock (&server->lock);
  while (finished && server->n_finished - server->n_reported < n)
    finished = g_cond_wait_until (&server->cond, &server->lock, deadline);
  server->n_reported = server->n_finished;
  g_mutex_unlock (&server->lock);

  g_assert_true (finished);
}

guint
test_server_count_handshakes (TestServer *server)
{
  guint n;

  g_mutex_lock (&server->lock);
  n = server->n_handshakes;
  g_mutex_unlock (&server->lock);

  return n;
}

int
test_server_get_handshake_result (TestServer *server)
{
  int result;

  g_mutex_lock (&server->lock);
  result = server->report.handshake_result;
  g_mutex_unlock (&server->lock);

  return result;
}

int
test_server_get_alert (TestServer *server)
{
  int alert;

  g_mutex_lock (&server->lock);
  alert = server->report.alert;
  g_mutex_unlock (&server->lock);

  return alert;
}

GBytes *
test_server_get_received (TestServer *server)
{
  GBytes *received;

  g_mutex_lock (&server->lock);
  received = g_bytes_new (server->report.received->data, server->report.received->len);
  g_mutex_unlock (&server->lock);

  return received;
}

gboolean
test_server_got_close_notify (TestServer *server)
{
  gboolean got;

  g_mutex_lock (&server->lock);
  got = server->report.got_close_notify;
  g_mutex_unlock (&server->lock);

  return got;
}

gboolean
test_server_got_client_hello (TestServer *server)
{
  gboolean got;

  g_mutex_lock (&server->lock);
  got = server->report.got_client_hello;
  g_mutex_unlock (&server->lock);

  return got;
}

char *
test_server_get_server_name (TestServer *server)
{
  char *name;

  g_mutex_lock (&server->lock);
  name = g_strdup (server->report.server_name);
  g_mutex_unlock (&server->lock);

  return name;
}

gsize
test_server_get_received_total (TestServer *server)
{
  gsize total;

  g_mutex_lock (&server->lock);
  total = server->received_total;
  g_mutex_unlock (&server->lock);

  return total;
}

gboolean
test_server_was_resumed (TestServer *server)
{
  gboolean resumed;

  g_mutex_lock (&server->lock);
  resumed = server->report.resumed;
  g_mutex_unlock (&server->lock);

  return resumed;
}

gboolean
test_server_renegotiated (TestServer *server)
{
  gboolean renegotiated;

  g_mutex_lock (&server->lock);
  renegotiated = server->report.renegotiated;
  g_mutex_unlock (&server->lock);

  return renegotiated;
}

GBytes *
test_server_get_channel_binding (TestServer              *server,
                                 gnutls_channel_binding_t type)
{
  GBytes *binding = NULL;

  g_mutex_lock (&server->lock);
  if (type == GNUTLS_CB_TLS_UNIQUE && server->report.tls_unique != NULL)
    binding = g_bytes_ref (server->report.tls_unique);
  else if (type == GNUTLS_CB_TLS_EXPORTER && server->report.tls_exporter != NULL)
    binding = g_bytes_ref (server->report.tls_exporter);
  g_mutex_unlock (&server->lock);

  return binding;
}

static void
end_connections (TestServer *server)
{
  GHashTableIter iter;
  gpointer fd;

  g_mutex_lock (&server->lock);
  g_hash_table_iter_init (&iter, server->client_fds);
  while (g_hash_table_iter_next (&iter, &fd, NULL))
    shutdown (GPOINTER_TO_INT (fd), SHUT_RDWR);
  g_mutex_unlock (&server->lock);
}

/* Stops the threads: wakes the accept() and ends the connections still
 * being served, including one accepted while stopping. */
static void
let_paused_server_go (TestServer *server,
                      gboolean    reset,
                      gsize       skip)
{
  g_mutex_lock (&server->lock);
  server->resumed = TRUE;
  server->reset = reset;
  server->skip = skip;
  g_cond_broadcast (&server->cond);
  g_mutex_unlock (&server->lock);
}

void
test_server_resume (TestServer *server,
                    gsize       skip)
{
  let_paused_server_go (server, FALSE, skip);
}

void
test_server_reset (TestServer *server)
{
  let_paused_server_go (server, TRUE, 0);
}

void
test_server_free (TestServer *server)
{
  guint i;

  g_assert_cmpint (write (server->stop_pipe[1], "", 1), ==, 1);
  end_connections (server);
  g_thread_join (server->thread);
  end_connections (server);
  for (i = 0; i < server->client_threads->len; i++)
    g_thread_join (g_ptr_array_index (server->client_threads, i));

  close (server->listen_fd);
  close (server->stop_pipe[0]);
  close (server->stop_pipe[1]);
  report_clear (&server->report);
  g_hash_table_unref (server->client_fds);
  g_ptr_array_unref (server->client_threads);
  g_hash_table_unref (server->sessions);
  g_mutex_clear (&server->lock);
  g_cond_clear (&server->cond);

  gnutls_priority_deinit (server->priority);
  g_clear_pointer (&server->certificate_credentials, gnutls_certificate_free_credentials);
  g_clear_pointer (&server->renegotiate_credentials, gnutls_certificate_free_credentials);
  g_clear_pointer (&server->anon_credentials, gnutls_anon_free_server_credentials);
  if (server->tickets)
    gnutls_free (server->ticket_key.data);

  g_free (server->chain);
  g_free (server->key);
  g_free (server->priority_string);
  g_free (server->greeting);
  g_free (server->alpn);
  g_free (server->http_body);
  g_free (server->renegotiate_chain);
  g_free (server->renegotiate_key);
  g_free (server->request_certificate);
  g_free (server->address);
  g_free (server);
}

/* Independent servers ------------------------------------------------- */

/* The server runs as a child that the test reaps itself: a GSubprocess
 * would be reaped in GLib's worker thread, whose hand-over to the waiting
 * thread ThreadSanitizer cannot see. */
struct _TestProcessServer
{
  GPid pid;
  gboolean exited;
  char *address;
};

static guint16
free_port (void)
{
  struct sockaddr_in address = { 0 };
  socklen_t length = sizeof address;
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &address, sizeof address), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &address, &length), ==, 0);
  close (fd);

  return ntohs (address.sin_port);
}

/* Whether the child has exited, reaping it if it has. */
static gboolean
process_server_exited (TestProcessServer *server)
{
  int status;

  if (!server->exited && waitpid (server->pid, &status, WNOHANG) == server->pid)
    server->exited = TRUE;

  return server->exited;
}

/* Whether the process listens, trying until it does, exits, or the time
 * for a test is up. */
static gboolean
wait_until_accepting (TestProcessServer *server)
{
  gint64 deadline = g_get_monotonic_time () + TEST_TIMEOUT_SECONDS * G_TIME_SPAN_SECOND;
  g_autoptr(GSocketClient) client = g_socket_client_new ();

  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr(GSocketConnection) probe = NULL;

      if (process_server_exited (server))
        return FALSE;

      probe = g_socket_client_connect_to_host (client, server->address, 0, NULL, NULL);
      if (probe != NULL)
        return TRUE;
      g_usleep (G_USEC_PER_SEC / 20);
    }

  return FALSE;
}

static TestProcessServer *
process_server_start (const char *const *argv,
                      guint16            port)
{
  TestProcessServer *server = g_new0 (TestProcessServer, 1);
  g_autoptr(GError) error = NULL;

  server->address = g_strdup_printf ("127.0.0.1:%u", port);
  g_spawn_async (NULL, (char **) argv, NULL,
                 G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL
                 | G_SPAWN_STDERR_TO_DEV_NULL,
                 NULL, NULL, &server->pid, &error);
  g_assert_no_error (error);
  if (wait_until_accepting (server))
    return server;

  test_process_server_free (server);
  return NULL;
}

TestProcessServer *
test_gnutls_serv_new (const char        *chain,
                      const char        *key,
                      const char *const *extra_args)
{
  g_autofree char *program = g_find_program_in_path ("gnutls-serv");
  g_autofree char *chain_path = test_data_path (chain);
  g_autofree char *key_path = test_data_path (key);
  guint attempt;

  if (program == NULL)
    return NULL;

  /* Another process may take the free port first: try another. */
  for (attempt = 0; attempt < 3; attempt++)
    {
      g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
      guint16 port = free_port ();
      TestProcessServer *server;
      guint i;

      g_ptr_array_add (argv, g_strdup (program));
      g_ptr_array_add (argv, g_strdup_printf ("--port=%u", port));
      g_ptr_array_add (argv, g_strdup ("--echo"));
      g_ptr_array_add (argv, g_strdup ("--x509certfile"));
      g_ptr_array_add (argv, g_strdup (chain_path));
      g_ptr_array_add (argv, g_strdup ("--x509keyfile"));
      g_ptr_array_add (argv, g_strdup (key_path));
      for (i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
        g_ptr_array_add (argv, g_strdup (extra_args[i]));
      g_ptr_array_add (argv, NULL);

      server = process_server_start ((const char *const *) argv->pdata, port);
      if (server != NULL)
        return server;
    }

  g_error ("gnutls-serv did not start");
}

const char *
test_process_server_get_address (TestProcessServer *server)
{
  return server->address;
}

void
test_process_server_free (TestProcessServer *server)
{
  int status;

  if (!process_server_exited (server))
    {
      kill (server->pid, SIGTERM);
      while (waitpid (server->pid, &status, 0) < 0 && errno == EINTR)
        ;
    }
  g_spawn_close_pid (server->pid);
  g_free (server->address);
  g_free (server);
}

/* The proxy -------------------------------------------------------------- */

struct _TestProxy
{
  guint16 target_port;
  int listen_fd;
  int stop_pipe[2];
  char *uri;
  GThread *thread;

  GMutex lock;
  guint connects;
  char *last_target;
  GPtrArray *relays;     /* GThread, joined when the proxy goes */
};

typedef struct
{
  TestProxy *proxy;
  int client_fd;
} Relay;

static int
connect_to_loopback (guint16 port)
{
  struct sockaddr_in address = { 0 };
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  address.sin_port = htons (port);
  if (fd >= 0 && connect (fd, (struct sockaddr *) &address, sizeof address) < 0)
    {
      close (fd);
      return -1;
    }

  return fd;
}

/* Reads the request head, up to its empty line, one byte at a time so
 * that nothing of the tunnelled stream is read with it. */
static char *
read_request_head (int fd)
{
  GString *head = g_string_new (NULL);
  struct pollfd client = { fd, POLLIN, 0 };
  char c;

  while (!g_str_has_suffix (head->str, "\r\n\r\n") && head->len < 8192
         && poll (&client, 1, TIMEOUT_MS) > 0 && read (fd, &c, 1) == 1)
    g_string_append_c (head, c);

  return g_string_free (head, FALSE);
}

/* Copies bytes both ways until both sides have closed, passing on each
 * side's end as a half-close, or until the relay stalls. */
static void
relay_bytes (int a,
             int b)
{
  struct pollfd fds[2] = { { a, POLLIN, 0 }, { b, POLLIN, 0 } };
  char buffer[16384];

  while ((fds[0].fd >= 0 || fds[1].fd >= 0) && poll (fds, 2, TIMEOUT_MS) > 0)
    {
      guint i;

      for (i = 0; i < 2; i++)
        {
          int other = i == 0 ? b : a;
          ssize_t n;

          if (fds[i].fd < 0 || fds[i].revents == 0)
            continue;

          n = read (fds[i].fd, buffer, sizeof buffer);
          if (n > 0 && write (other, buffer, n) == n)
            continue;

          shutdown (other, SHUT_WR);
          fds[i].fd = -1;
        }
    }
}

static gpointer
relay_thread (gpointer data)
{
  Relay *relay = data;
  TestProxy *proxy = relay->proxy;
  g_autofree char *head = read_request_head (relay->client_fd);
  g_auto(GStrv) words = g_strsplit (head, " ", 3);
  static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  static const char refused[] = "HTTP/1.1 405 Method Not Allowed\r\n\r\n";
  int target_fd = -1;

  if (g_strv_length (words) == 3 && g_str_equal (words[0], "CONNECT"))
    target_fd = connect_to_loopback (proxy->target_port);

  if (target_fd < 0)
    {
      if (write (relay->client_fd, refused, strlen (refused)) < 0)
        g_debug ("The proxy could not refuse a request");
    }
  else if (write (relay->client_fd, established, strlen (established)) > 0)
    {
      g_mutex_lock (&proxy->lock);
      proxy->connects++;
      g_free (proxy->last_target);
      proxy->last_target = g_strdup (words[1]);
      g_mutex_unlock (&proxy->lock);

      relay_bytes (relay->client_fd, target_fd);
    }

  if (target_fd >= 0)
    close (target_fd);
  close (relay->client_fd);
  g_free (relay);

  return NULL;
}

static gpointer
proxy_thread (gpointer data)
{
  TestProxy *proxy = data;
  int fd;

  while ((fd = test_accept_until_stopped (proxy->listen_fd, proxy->stop_pipe[0])) >= 0)
    {
      Relay *relay;

      set_send_timeout (fd);
      relay = g_new0 (Relay, 1);
      relay->proxy = proxy;
      relay->client_fd = fd;
      g_mutex_lock (&proxy->lock);
      g_ptr_array_add (proxy->relays, g_thread_new ("test-proxy-relay", relay_thread,
                                                    relay));
      g_mutex_unlock (&proxy->lock);
    }

  return NULL;
}

TestProxy *
test_proxy_new (guint16 target_port)
{
  TestProxy *proxy = g_new0 (TestProxy, 1);
  struct sockaddr_in address = { 0 };
  socklen_t length = sizeof address;

  proxy->target_port = target_port;
  proxy->relays = g_ptr_array_new ();
  g_mutex_init (&proxy->lock);
  g_assert_cmpint (pipe (proxy->stop_pipe), ==, 0);

  proxy->listen_fd = socket (AF_INET, SOCK_STREAM, 0);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (proxy->listen_fd, (struct sockaddr *) &address, sizeof address),
                   ==, 0);
  g_assert_cmpint (listen (proxy->listen_fd, 8), ==, 0);
  g_assert_true (g_unix_set_fd_nonblocking (proxy->listen_fd, TRUE, NULL));
  g_assert_cmpint (getsockname (proxy->listen_fd, (struct sockaddr *) &address, &length),
                   ==, 0);
  proxy->uri = g_strdup_printf ("http://127.0.0.1:%u", ntohs (address.sin_port));

  proxy->thread = g_thread_new ("test-proxy", proxy_thread, proxy);

  return proxy;
}

const char *
test_proxy_get_uri (TestProxy *proxy)
{
  return proxy->uri;
}

guint
test_proxy_get_connects (TestProxy *proxy)
{
  guint connects;

  g_mutex_lock (&proxy->lock);
  connects = proxy->connects;
  g_mutex_unlock (&proxy->lock);

  return connects;
}

char *
test_proxy_get_last_target (TestProxy *proxy)
{
  char *target;

  g_mutex_lock (&proxy->lock);
  target = g_strdup (proxy->last_target);
  g_mutex_unlock (&proxy->lock);

  return target;
}

/* Stops accepting, then waits for the relays, which end when their
 * connections do (or time out). */
void
test_proxy_free (TestProxy *proxy)
{
  guint i;

  g_assert_cmpint (write (proxy->stop_pipe[1], "", 1), ==, 1);
  g_thread_join (proxy->thread);
  for (i = 0; i < proxy->relays->len; i++)
    g_thread_join (proxy->relays->pdata[i]);

  close (proxy->listen_fd);
  close (proxy->stop_pipe[0]);
  close (proxy->stop_pipe[1]);
  g_ptr_array_unref (proxy->relays);
  g_mutex_clear (&proxy->lock);
  g_free (proxy->last_target);
  g_free (proxy->uri);
  g_free (proxy);
}

/* The resolver ----------------------------------------------------------- */

typedef struct
{
  GResolver parent_instance;
} TestResolver;

typedef struct
{
  GResolverClass parent_class;
} TestResolverClass;

static GType test_resolver_get_type (void);

G_DEFINE_TYPE (TestResolver, test_resolver, G_TYPE_RESOLVER)

static gboolean
is_test_name (const char *name)
{
  g_autofree char *lower = g_ascii_strdown (name, -1);

  while (g_str_has_suffix (lower, "."))
    lower[strlen (lower) - 1] = '\0';

  return g_str_has_suffix (lower, ".test");
}

static GList *
test_resolver_lookup (GResolver               *resolver,
                      const char              *name,
                      GResolverNameLookupFlags flags,
                      GCancellable            *cancellable,
                      GError                 **error)
{
  if (!is_test_name (name) || (flags & G_RESOLVER_NAME_LOOKUP_FLAGS_IPV6_ONLY))
    {
      g_set_error (error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND,
                   "The test resolver knows no address of “%s”", name);
      return NULL;
    }

  return g_list_prepend (NULL, g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4));
}

static GList *
test_resolver_lookup_by_name (GResolver    *resolver,
                              const char   *name,
                              GCancellable *cancellable,
                              GError      **error)
{
  return test_resolver_lookup (resolver, name, G_RESOLVER_NAME_LOOKUP_FLAGS_DEFAULT,
                               cancellable, error);
}

static void
test_resolver_lookup_async (GResolver               *resolver,
                            const char              *name,
                            GResolverNameLookupFlags flags,
                            GCancellable            *cancellable,
                            GAsyncReadyCallback      callback,
                            gpointer                 user_data)
{
  g_autoptr(GTask) task = g_task_new (resolver, cancellable, callback, user_data);
  GError *error = NULL;
  GList *addresses;

  g_task_set_source_tag (task, test_resolver_lookup_async);
  addresses = test_resolver_lookup (resolver, name, flags, cancellable, &error);
  if (addresses == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, addresses, (GDestroyNotify) g_resolver_free_addresses);
}

static void
test_resolver_lookup_by_name_async (GResolver          *resolver,
                                    const char         *name,
                                    GCancellable       *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer            user_data)
{
  test_resolver_lookup_async (resolver, name, G_RESOLVER_NAME_LOOKUP_FLAGS_DEFAULT,
                              cancellable, callback, user_data);
}

static GList *
test_resolver_lookup_finish (GResolver    *resolver,
                             GAsyncResult *result,
                             GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, resolver), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
test_resolver_class_init (TestResolverClass *klass)
{
  GResolverClass *resolver_class = G_RESOLVER_CLASS (klass);

  resolver_class->lookup_by_name = test_resolver_lookup_by_name;
  resolver_class->lookup_by_name_async = test_resolver_lookup_by_name_async;
  resolver_class->lookup_by_name_finish = test_resolver_lookup_finish;
  resolver_class->lookup_by_name_with_flags = test_resolver_lookup;
  resolver_class->lookup_by_name_with_flags_async = test_resolver_lookup_async;
  resolver_class->lookup_by_name_with_flags_finish = test_resolver_lookup_finish;
}

static void
test_resolver_init (TestResolver *self)
{
}

void
test_resolve_test_names (void)
{
  g_autoptr(GResolver) resolver = g_object_new (test_resolver_get_type (), NULL);

  g_resolver_set_default (resolver);
}
