/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pintls-demo: the certificate-rotation story, played end to end against a
 * small GnuTLS server running in this process.
 *
 *   Server: cert1     client v1 pins {cert1}; client v2 pins {cert1, cert2}
 *   Server: cert2     v1 gets "pin mismatch: update required"; v2 keeps working
 *
 * The clients use only the public pintls API. Exits 0 if the story played
 * as expected, 1 otherwise. */

#include <pintls/pintls.h>

#include <glib-unix.h>
#include <gnutls/gnutls.h>
#include <locale.h>
#include <string.h>

#define N_CERTIFICATES 2
#define SERVER_TIMEOUT_MS 10000
#define REPORT_TIMEOUT_US (10 * G_USEC_PER_SEC)

/* The server ------------------------------------------------------------ */

/* What the server saw on one connection. */
typedef struct
{
  int handshake_result;     /* 0, or the GnuTLS error */
  int alert;                /* the fatal alert the client sent, or -1 */
} ServerReport;

typedef struct
{
  gnutls_certificate_credentials_t credentials[N_CERTIFICATES];
  int serving;              /* index into credentials; atomic */
  GSocket *listener;
  guint16 port;
  GCancellable *cancellable;
  GAsyncQueue *reports;     /* a ServerReport for each connection, in order */
  GThread *thread;
} DemoServer;

/* Reads the client's line and sends it back. */
static void
echo_line (gnutls_session_t session)
{
  char line[256];
  gsize length = 0;

  while (length < sizeof line && memchr (line, '\n', length) == NULL)
    {
      ssize_t n = gnutls_record_recv (session, line + length, sizeof line - length);

      if (n <= 0)
        break;
      length += n;
    }

  gnutls_record_send (session, line, length);
  gnutls_bye (session, GNUTLS_SHUT_WR);
}

static ServerReport *
serve_connection (DemoServer *server,
                  GSocket    *client)
{
  ServerReport *report = g_new0 (ServerReport, 1);
  gnutls_certificate_credentials_t credentials;
  gnutls_session_t session;
  int ret;

  /* GSocket descriptors are non-blocking; GnuTLS's own transport wants a
   * blocking one. */
  g_unix_set_fd_nonblocking (g_socket_get_fd (client), FALSE, NULL);

  credentials = server->credentials[g_atomic_int_get (&server->serving)];
  gnutls_init (&session, GNUTLS_SERVER);
  gnutls_set_default_priority (session);
  gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, credentials);
  gnutls_transport_set_int (session, g_socket_get_fd (client));
  gnutls_handshake_set_timeout (session, SERVER_TIMEOUT_MS);
  gnutls_record_set_timeout (session, SERVER_TIMEOUT_MS);

  do
    ret = gnutls_handshake (session);
  while (ret < 0 && !gnutls_error_is_fatal (ret));

  report->handshake_result = ret;
  report->alert = -1;
  if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED)
    report->alert = gnutls_alert_get (session);
  if (ret == 0)
    echo_line (session);

  gnutls_deinit (session);

  return report;
}

static gpointer
server_thread (gpointer data)
{
  DemoServer *server = data;

  for (;;)
    {
      g_autoptr(GSocket) client = g_socket_accept (server->listener,
                                                   server->cancellable, NULL);

      if (client == NULL)
        return NULL;

      g_async_queue_push (server->reports, serve_connection (server, client));
    }
}

static gboolean
load_credentials (DemoServer *server,
                  const char *data_dir,
                  GError    **error)
{
  guint i;

  for (i = 0; i < N_CERTIFICATES; i++)
    {
      g_autofree char *certificate = g_strdup_printf ("%s/cert%u.pem", data_dir, i + 1);
      g_autofree char *key = g_strdup_printf ("%s/key%u.pem", data_dir, i + 1);
      int ret;

      gnutls_certificate_allocate_credentials (&server->credentials[i]);
      ret = gnutls_certificate_set_x509_key_file (server->credentials[i], certificate,
                                                  key, GNUTLS_X509_FMT_PEM);
      if (ret < 0)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Cannot load “%s”: %s",
                       certificate, gnutls_strerror (ret));
          return FALSE;
        }
    }

  return TRUE;
}

/* Listens on a port of 127.0.0.1 that the system picks. */
static gboolean
listen_on_loopback (DemoServer *server,
                    GError    **error)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  server->listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                   G_SOCKET_PROTOCOL_TCP, error);
  if (server->listener == NULL
      || !g_socket_bind (server->listener, any_port, TRUE, error)
      || !g_socket_listen (server->listener, error))
    return FALSE;

  bound = g_socket_get_local_address (server->listener, error);
  if (bound == NULL)
    return FALSE;

  server->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  return TRUE;
}

static gboolean
demo_server_start (DemoServer *server,
                   const char *data_dir,
                   GError    **error)
{
  if (!load_credentials (server, data_dir, error)
      || !listen_on_loopback (server, error))
    return FALSE;

  server->cancellable = g_cancellable_new ();
  server->reports = g_async_queue_new_full (g_free);
  server->thread = g_thread_new ("demo-server", server_thread, server);

  return TRUE;
}

static void
demo_server_stop (DemoServer *server)
{
  guint i;

  if (server->thread != NULL)
    {
      g_cancellable_cancel (server->cancellable);
      g_thread_join (server->thread);
    }

  g_clear_object (&server->listener);
  g_clear_object (&server->cancellable);
  g_clear_pointer (&server->reports, g_async_queue_unref);
  for (i = 0; i < N_CERTIFICATES; i++)
    g_clear_pointer (&server->credentials[i], gnutls_certificate_free_credentials);
}

/* The clients ----------------------------------------------------------- */

/* A client release and the pins it ships with. */
typedef struct
{
  const char *name;
  PinTlsPinSet *pins;
} DemoClient;

/* Connects as @client, sends a line and reads the server's echo. */
static gboolean
exchange_line (const DemoClient *client,
               guint16           port,
               GError          **error)
{
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%u", port);
  g_autofree char *line = g_strdup_printf ("hello from client %s\n", client->name);
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GDataInputStream) input = NULL;
  g_autoptr(GError) read_error = NULL;
  g_autofree char *echo = NULL;
  GIOStream *stream;

  connection = pin_tls_connect (address, 0, client->pins, NULL, error);
  if (connection == NULL)
    return FALSE;

  stream = G_IO_STREAM (connection);
  if (!g_output_stream_write_all (g_io_stream_get_output_stream (stream), line,
                                  strlen (line), NULL, NULL, error))
    return FALSE;

  input = g_data_input_stream_new (g_io_stream_get_input_stream (stream));
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (input), FALSE);
  echo = g_data_input_stream_read_line_utf8 (input, NULL, NULL, &read_error);
  if (echo == NULL && read_error == NULL)
    read_error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                      "The server closed without answering");
  if (echo == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&read_error));
      return FALSE;
    }

  g_print ("  client %s: connected, sent “%s”, the server echoed “%s”\n",
           client->name, g_strchomp (line), echo);

  return g_io_stream_close (stream, NULL, error);
}

static void
print_pins (const DemoClient *client,
            const char       *what)
{
  g_auto(GStrv) pins = pin_tls_pin_set_to_strings (client->pins);
  guint i;

  g_print ("Client %s ships pinning %s:\n", client->name, what);
  for (i = 0; pins[i] != NULL; i++)
    g_print ("    %s\n", pins[i]);
}

static gboolean
make_clients (DemoClient *v1,
              DemoClient *v2,
              const char *data_dir,
              GError    **error)
{
  g_autofree char *cert1 = g_build_filename (data_dir, "cert1.pem", NULL);
  g_autofree char *cert2 = g_build_filename (data_dir, "cert2.pem", NULL);
  g_autoptr(PinTlsPinSet) next = NULL;

  /* Each file gives a whole-certificate pin, as rustls-pin pins. */
  v1->pins = pin_tls_pin_set_new_from_file (cert1, error);
  if (v1->pins == NULL)
    return FALSE;

  next = pin_tls_pin_set_new_from_file (cert2, error);
  if (next == NULL)
    return FALSE;

  v2->pins = pin_tls_pin_set_union (v1->pins, next);

  print_pins (v1, "certificate 1");
  print_pins (v2, "certificates 1 and 2, ready for the rotation");

  return TRUE;
}

/* The story ------------------------------------------------------------- */

typedef struct
{
  guint server_certificate;   /* 1 or 2 */
  guint client;               /* 0 for v1, 1 for v2 */
  gboolean expect_mismatch;
} StoryStep;

static const StoryStep story[] = {
  { 1, 0, FALSE },
  { 1, 1, FALSE },
  { 2, 0, TRUE },
  { 2, 1, FALSE },
};

static char *
alert_wire_name (int alert)
{
  const char *name = gnutls_alert_get_strname (alert);

  if (name == NULL || !g_str_has_prefix (name, "GNUTLS_A_"))
    return g_strdup_printf ("number %d", alert);

  return g_ascii_strdown (name + strlen ("GNUTLS_A_"), -1);
}

static void
print_server_report (const ServerReport *report)
{
  g_autofree char *alert = NULL;

  if (report == NULL)
    g_print ("  server:    saw no connection\n");
  else if (report->handshake_result == 0)
    g_print ("  server:    handshake completed, line echoed\n");
  else if (report->alert >= 0)
    {
      alert = alert_wire_name (report->alert);
      g_print ("  server:    received the fatal alert %s from the client (%s)\n", alert,
               gnutls_alert_get_name (report->alert));
    }
  else
    g_print ("  server:    handshake failed: %s\n",
             gnutls_strerror (report->handshake_result));
}

static gboolean
played_as_expected (const StoryStep    *step,
                    const GError       *error,
                    const ServerReport *report)
{
  if (report == NULL)
    return FALSE;

  if (!step->expect_mismatch)
    return error == NULL && report->handshake_result == 0;

  return g_error_matches (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH)
         && report->handshake_result == GNUTLS_E_FATAL_ALERT_RECEIVED
         && report->alert == GNUTLS_A_BAD_CERTIFICATE;
}

static gboolean
play_step (DemoServer       *server,
           const StoryStep  *step,
           const DemoClient *client)
{
  g_autoptr(GError) error = NULL;
  g_autofree ServerReport *report = NULL;

  if (!exchange_line (client, server->port, &error))
    {
      if (g_error_matches (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH))
        g_print ("  client %s: pin mismatch: update required\n", client->name);
      else
        g_print ("  client %s: failed\n", client->name);
      g_print ("             %s\n", error->message);
    }

  report = g_async_queue_timeout_pop (server->reports, REPORT_TIMEOUT_US);
  print_server_report (report);

  return played_as_expected (step, error, report);
}

static gboolean
play_story (DemoServer       *server,
            const DemoClient *clients)
{
  gboolean as_expected = TRUE;
  guint serving = 0;
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (story); i++)
    {
      const StoryStep *step = &story[i];

      if (step->server_certificate != serving)
        {
          serving = step->server_certificate;
          g_atomic_int_set (&server->serving, serving - 1);
          g_print ("\n%s certificate %u.\n",
                   i == 0 ? "The server presents" : "The server moves to", serving);
        }

      as_expected &= play_step (server, step, &clients[step->client]);
    }

  return as_expected;
}

static int
run_demo (const char *data_dir)
{
  DemoServer server = { { NULL, }, 0, };
  DemoClient clients[] = { { "v1", NULL }, { "v2", NULL } };
  g_autoptr(GError) error = NULL;
  gboolean as_expected = FALSE;

  g_print ("pintls demo: rotating a server certificate without stranding clients\n\n");

  if (make_clients (&clients[0], &clients[1], data_dir, &error)
      && demo_server_start (&server, data_dir, &error))
    {
      g_print ("\nA TLS server runs in this process on 127.0.0.1:%u.\n", server.port);
      as_expected = play_story (&server, clients);
    }
  demo_server_stop (&server);
  g_clear_object (&clients[0].pins);
  g_clear_object (&clients[1].pins);

  if (error != NULL)
    g_printerr ("pintls-demo: %s\n", error->message);
  else if (as_expected)
    g_print ("\nAs expected: client v1 was told to update, client v2 kept working.\n");
  else
    g_print ("\nThe story did not play as expected.\n");

  return as_expected ? 0 : 1;
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *data_dir = NULL;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  GOptionEntry entries[] = {
    { "data-dir", 0, 0, G_OPTION_ARG_FILENAME, &data_dir,
      "Where cert1.pem, key1.pem, cert2.pem and key2.pem are", "DIR" },
    G_OPTION_ENTRY_NULL
  };

  setlocale (LC_ALL, "");

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, "Plays the pintls certificate-rotation story "
                                "against a TLS server in this process.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("pintls-demo: %s\n", error->message);
      return 1;
    }

  return run_demo (data_dir != NULL ? data_dir : PINTLS_DEMO_DATA_DIR);
}
