/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "test-utils.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define TIMEOUT_MS (TEST_TIMEOUT_SECONDS * 1000)
#define RECORD_BUFFER_SIZE 16384

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
} TestServerReport;

struct _TestServer
{
  char *chain;
  char *key;
  char *priority_string;
  gboolean tickets;
  gboolean anonymous;
  char *greeting;
  gboolean no_close_notify;
  char *alpn;
  gboolean no_tls;

  gnutls_certificate_credentials_t certificate_credentials;
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
  int client_fd;           /* the connection being served, or -1 */
  guint n_finished;
  guint n_reported;
  TestServerReport report; /* of the connection that finished last */
};

static void
report_clear (TestServerReport *report)
{
  g_clear_pointer (&report->received, g_byte_array_unref);
  g_clear_pointer (&report->server_name, g_free);
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

static gnutls_session_t
server_session_new (TestServer       *server,
                    int               fd,
                    TestServerReport *report)
{
  gnutls_session_t session;

  g_assert_cmpint (gnutls_init (&session,
                                GNUTLS_SERVER
                                | (server->tickets ? 0 : GNUTLS_NO_TICKETS)),
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
      if (!server->no_close_notify && !send_all (session, buffer, n))
        return;
    }
}

static void
serve_connection (TestServer       *server,
                  int               fd,
                  TestServerReport *report)
{
  gnutls_session_t session = server_session_new (server, fd, report);
  int ret;

  do
    ret = gnutls_handshake (session);
  while (ret < 0 && !gnutls_error_is_fatal (ret));

  report->handshake_result = ret;
  if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED)
    report->alert = gnutls_alert_get (session);

  if (ret == 0 && server->greeting != NULL)
    send_all (session, (const guint8 *) server->greeting, strlen (server->greeting));
  if (ret == 0 && server->no_close_notify)
    shutdown (fd, SHUT_WR);
  if (ret == 0)
    serve_records (server, session, report);

  if (report->got_close_notify && !server->no_close_notify)
    gnutls_bye (session, GNUTLS_SHUT_WR);
  gnutls_deinit (session);
}

/* GnuTLS times out reads itself; a client that stops reading must not
 * block the server's writes for ever either. */
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

static void
set_send_timeout (int fd)
{
  struct timeval timeout = { TEST_TIMEOUT_SECONDS, 0 };

  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

/* Waits for a connection or for the stop request: -1 when stopping. */
static int
accept_client (TestServer *server)
{
  struct pollfd fds[2] = {
    { server->listen_fd, POLLIN, 0 },
    { server->stop_pipe[0], POLLIN, 0 },
  };
  int fd;

  do
    {
      if (poll (fds, G_N_ELEMENTS (fds), -1) < 0 && errno != EINTR)
        return -1;
      if (fds[1].revents != 0)
        return -1;

      fd = accept (server->listen_fd, NULL, NULL);
    }
  while (fd < 0);

  return fd;
}

static gpointer
server_thread (gpointer data)
{
  TestServer *server = data;
  int fd;

  while ((fd = accept_client (server)) >= 0)
    {
      TestServerReport report;

      set_send_timeout (fd);
      g_mutex_lock (&server->lock);
      server->client_fd = fd;
      g_mutex_unlock (&server->lock);

      report_init (&report);
      if (server->no_tls)
        serve_plain_text (server, fd, &report);
      else
        serve_connection (server, fd, &report);

      g_mutex_lock (&server->lock);
      server->client_fd = -1;
      close (fd);
      report_clear (&server->report);
      server->report = report;
      server->n_finished++;
      g_cond_broadcast (&server->cond);
      g_mutex_unlock (&server->lock);
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
  g_assert_cmpint (listen (server->listen_fd, 8), ==, 0);

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
  server->no_close_notify = options->no_close_notify;
  server->alpn = g_strdup (options->alpn);
  server->no_tls = options->no_tls;

  load_credentials (server);
  g_assert_cmpint (gnutls_priority_init (&server->priority, server->priority_string, NULL),
                   ==, 0);
  if (server->tickets)
    g_assert_cmpint (gnutls_session_ticket_key_generate (&server->ticket_key), ==, 0);

  g_mutex_init (&server->lock);
  g_cond_init (&server->cond);
  server->client_fd = -1;
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
  gint64 deadline = g_get_monotonic_time () + TEST_TIMEOUT_SECONDS * G_TIME_SPAN_SECOND;
  gboolean finished = TRUE;

  g_mutex_lock (&server->lock);
  while (finished && server->n_finished == server->n_reported)
    finished = g_cond_wait_until (&server->cond, &server->lock, deadline);
  server->n_reported = server->n_finished;
  g_mutex_unlock (&server->lock);

  g_assert_true (finished);
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

/* Stops the thread: wakes its accept() and ends a connection it may still
 * be serving. */
void
test_server_free (TestServer *server)
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
  report_clear (&server->report);
  g_mutex_clear (&server->lock);
  g_cond_clear (&server->cond);

  gnutls_priority_deinit (server->priority);
  g_clear_pointer (&server->certificate_credentials, gnutls_certificate_free_credentials);
  g_clear_pointer (&server->anon_credentials, gnutls_anon_free_server_credentials);
  if (server->tickets)
    gnutls_free (server->ticket_key.data);

  g_free (server->chain);
  g_free (server->key);
  g_free (server->priority_string);
  g_free (server->greeting);
  g_free (server->alpn);
  g_free (server->address);
  g_free (server);
}
