/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Pin policies in the system TLS stack: the connections glib-networking
 * makes for GSocketClient and libsoup, armed with a policy, against an
 * in-process HTTPS server (and nginx, with --nginx) over loopback.
 *
 * This is a plain program and not a GTest one on purpose: glib-networking
 * turns TLS session resumption off in GTest programs, and what matters
 * most here is that a connection that resumes a TLS 1.3 session, which
 * glib-networking accepts whatever its database says, is still refused.
 * The control scenarios show that, in this process, such connections do
 * resume and get through without pintls's re-check. It prints TAP.
 *
 * Every server is for "host.test" (data/certs/leaf1-chain.pem, or the
 * impostor leaf2-chain.pem, both under rootA, which is trusted); the test
 * resolver sends the name to 127.0.0.1. */

#include "test-utils.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_LIBSOUP
#include <libsoup/soup.h>
#endif

#define BODY "pinned hello\n"

static GTlsDatabase *trust_database;
static char *nginx_address;
static guint n_scenarios;
static guint n_failed;

/* A tiny TAP harness ------------------------------------------------------- */

typedef struct
{
  GString *failures;
  GString *notes; /* what the application saw, for whoever reads the log */
  char *skip;
} Scenario;

static void
expect_true (Scenario   *scenario,
             gboolean    condition,
             const char *text,
             int         line)
{
  if (!condition)
    g_string_append_printf (scenario->failures, "line %d: expected %s\n", line,
                            text);
}

static void
expect_error (Scenario     *scenario,
              const GError *error,
              GQuark        domain,
              int           code,
              int           line)
{
  if (error == NULL)
    g_string_append_printf (scenario->failures,
                            "line %d: expected error %s %d, got none\n", line,
                            g_quark_to_string (domain), code);
  else if (!g_error_matches (error, domain, code))
    g_string_append_printf (
      scenario->failures, "line %d: expected error %s %d, got %s %d: %s\n", line,
      g_quark_to_string (domain), code, g_quark_to_string (error->domain),
      error->code, error->message);
}

static void
expect_no_error (Scenario     *scenario,
                 const GError *error,
                 int           line)
{
  if (error != NULL)
    g_string_append_printf (
      scenario->failures, "line %d: unexpected error %s %d: %s\n", line,
      g_quark_to_string (error->domain), error->code, error->message);
}

#define EXPECT(condition) expect_true (scenario, (condition), #condition, __LINE__)
#define EXPECT_ERROR(error, domain, code) \
  expect_error (scenario, (error), (domain), (code), __LINE__)
#define EXPECT_NO_ERROR(error) expect_no_error (scenario, (error), __LINE__)

typedef void (*ScenarioFunc) (Scenario     *scenario,
                              gconstpointer data);

static void
run (const char   *name,
     ScenarioFunc  func,
     gconstpointer data)
{
  Scenario scenario = { g_string_new (NULL), g_string_new (NULL), NULL };
  g_auto(GStrv) lines = NULL;
  guint i;

  func (&scenario, data);
  n_scenarios++;

  if (scenario.skip != NULL)
    {
      printf ("ok %u - %s # SKIP %s\n", n_scenarios, name, scenario.skip);
    }
  else if (scenario.failures->len == 0)
    {
      printf ("ok %u - %s\n", n_scenarios, name);
    }
  else
    {
      n_failed++;
      printf ("not ok %u - %s\n", n_scenarios, name);
      lines = g_strsplit (g_strchomp (scenario.failures->str), "\n", -1);
      for (i = 0; lines[i] != NULL; i++)
        printf ("# %s\n", lines[i]);
    }

  g_clear_pointer (&lines, g_strfreev);
  lines = g_strsplit (g_strchomp (scenario.notes->str), "\n", -1);
  for (i = 0; scenario.notes->len > 0 && lines[i] != NULL; i++)
    printf ("# %s\n", lines[i]);

  fflush (stdout);
  g_string_free (scenario.failures, TRUE);
  g_string_free (scenario.notes, TRUE);
  g_free (scenario.skip);
}

static void
skip (Scenario   *scenario,
      const char *reason)
{
  g_free (scenario->skip);
  scenario->skip = g_strdup (reason);
}

/* Policies, servers, reports --------------------------------------------- */

static gboolean
tls_1_3 (void)
{
  return g_strcmp0 (test_tls_version (), "1.2") != 0;
}

/* A policy pinning host.test, in CA_AND_PINS mode, to the public keys of
 * the first certificate of each file. */
static PinTlsPolicy *
policy_pinning (const char *first_file,
                ...)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(PinTlsPinSet) pins = NULL;
  g_autoptr(PinTlsPolicyEntry) entry = NULL;
  g_auto(GStrv) strings = NULL;
  g_autoptr(GError) error = NULL;
  PinTlsPolicy *policy = pin_tls_policy_new ();
  const char *name;
  va_list args;

  va_start (args, first_file);
  for (name = first_file; name != NULL; name = va_arg (args, const char *))
    {
      g_autofree char *pin = test_certtool_pin (name);

      g_strv_builder_add (builder, pin);
    }
  va_end (args);

  strings = g_strv_builder_end (builder);
  pins = pin_tls_pin_set_new ((const char *const *) strings, &error);
  g_assert_no_error (error);
  entry = pin_tls_policy_entry_new ("host.test", pins, &error);
  g_assert_no_error (error);
  g_assert_true (pin_tls_policy_add_entry (policy, entry, &error));

  return policy;
}

/* The pins of the genuine server, with a backup, and pins the genuine
 * server does not have. */
#define RIGHT_PINS "leaf1.pem", "leaf3.pem", NULL
#define WRONG_PINS "leaf3.pem", "leaf4.pem", NULL

static void
unref_reports (gpointer  reports,
               GClosure *closure)
{
  g_ptr_array_unref (reports);
}

static void
report_cb (PinTlsPolicy *policy,
           PinTlsReport *report,
           GPtrArray    *reports)
{
  g_ptr_array_add (reports, g_object_ref (report));
}

static GPtrArray *
collect_reports (PinTlsPolicy *policy)
{
  GPtrArray *reports = g_ptr_array_new_with_free_func (g_object_unref);

  g_signal_connect_data (policy, "report", G_CALLBACK (report_cb),
                         g_ptr_array_ref (reports),
                         unref_reports, 0);
  return reports;
}

/* Whether every report says the pins refused the server for a mismatch. */
static gboolean
all_refused (GPtrArray *reports)
{
  guint i;

  for (i = 0; i < reports->len; i++)
    {
      if (!pin_tls_report_get_refused (reports->pdata[i]))
        return FALSE;
    }

  return reports->len > 0;
}

static TestServer *
https_server (const char *chain,
              const char *key)
{
  TestServerOptions options = { chain, key, NULL, TRUE };

  options.http_body = BODY;
  return test_server_new (&options);
}

static char *
url_for (TestServer *server,
         const char *host)
{
  return g_strdup_printf ("https://%s:%u/", host, test_server_get_port (server));
}

/* GSocketClient ------------------------------------------------------------ */

typedef struct
{
  PinTlsPolicy *policy;   /* arm the client with it, if not NULL */
  gboolean database_only; /* only install a PinTlsDatabase of the policy */
  gboolean accept_all;    /* an accept-certificate handler accepts anything */
  gboolean no_validation; /* validation flags say nothing matters */
  const char *proxy;      /* a proxy URI */
  gboolean async;
} Fetch;

typedef struct
{
  GError *error;       /* connecting, writing or reading */
  char *response;      /* all the server sent, if nothing failed */
  GTlsConnection *tls; /* the connection glib-networking made */
  GError *pin_error;   /* what pin_tls_policy_check_connection () says */
} Fetched;

static void
fetched_clear (Fetched *fetched)
{
  g_clear_error (&fetched->error);
  g_clear_pointer (&fetched->response, g_free);
  g_clear_object (&fetched->tls);
  g_clear_error (&fetched->pin_error);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Fetched, fetched_clear)

static gboolean
accept_all_cb (GTlsConnection      *connection,
               GTlsCertificate     *certificate,
               GTlsCertificateFlags errors,
               gpointer             user_data)
{
  return TRUE;
}

typedef struct
{
  const Fetch *options;
  Fetched *fetched;
} FetchState;

/* Runs before pintls's own handler: the connection trusts rootA, as an
 * application would set it up, and may carry an accept-everything
 * handler. */
static void
client_event_cb (GSocketClient      *client,
                 GSocketClientEvent  event,
                 GSocketConnectable *connectable,
                 GIOStream          *connection,
                 FetchState         *state)
{
  g_autoptr(PinTlsDatabase) database = NULL;
  GTlsConnection *tls;

  if (event != G_SOCKET_CLIENT_TLS_HANDSHAKING)
    return;

  tls = G_TLS_CONNECTION (connection);
  g_set_object (&state->fetched->tls, tls);
  g_tls_connection_set_database (tls, trust_database);
  if (state->options->database_only)
    {
      database = pin_tls_database_new (state->options->policy, trust_database);
      g_tls_connection_set_database (tls, G_TLS_DATABASE (database));
    }
  if (state->options->accept_all)
    g_signal_connect (tls, "accept-certificate", G_CALLBACK (accept_all_cb), NULL);
}

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static GSocketConnection *
socket_client_connect (GSocketClient *client,
                       const char    *host_and_port,
                       gboolean       async,
                       GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  if (!async)
    return g_socket_client_connect_to_host (client, host_and_port, 443, NULL, error);

  g_socket_client_connect_to_host_async (client, host_and_port, 443, NULL,
                                         connected_cb, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);

  /* Let the client release what it no longer needs. */
  while (g_main_context_iteration (NULL, FALSE))
    ;

  return g_socket_client_connect_to_host_finish (client, result, error);
}

/* Sends a request and reads the whole response. */
static char *
exchange (GIOStream *stream,
          GError   **error)
{
  static const char request[] = "GET /file HTTP/1.1\r\nHost: host.test\r\n"
                                "Connection: close\r\n\r\n";
  g_autoptr(GByteArray) response = g_byte_array_new ();
  GOutputStream *output = g_io_stream_get_output_stream (stream);
  GInputStream *input = g_io_stream_get_input_stream (stream);
  guint8 buffer[4096];
  gssize n;

  if (!g_output_stream_write_all (output, request, strlen (request), NULL, NULL,
                                  error))
    return NULL;

  while ((n = g_input_stream_read (input, buffer, sizeof buffer, NULL, error)) > 0)
    g_byte_array_append (response, buffer, n);
  if (n < 0)
    return NULL;

  g_byte_array_append (response, (const guint8 *) "", 1);
  return g_strdup ((const char *) response->data);
}

static void
fetch_with_socket_client (TestServer  *server,
                          const Fetch *options,
                          Fetched     *fetched)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GProxyResolver) resolver = NULL;
  g_autofree char *address = NULL;
  FetchState state = { options, fetched };

  address = g_strdup_printf ("host.test:%u", test_server_get_port (server));
  g_socket_client_set_tls (client, TRUE);
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  if (options->no_validation)
    g_socket_client_set_tls_validation_flags (client, 0);
  G_GNUC_END_IGNORE_DEPRECATIONS
  if (options->proxy != NULL)
    {
      resolver = g_simple_proxy_resolver_new (options->proxy, NULL);
      g_socket_client_set_proxy_resolver (client, resolver);
    }

  g_signal_connect (client, "event", G_CALLBACK (client_event_cb), &state);
  if (options->policy != NULL && !options->database_only)
    pin_tls_policy_arm_socket_client (options->policy, client);

  connection =
    socket_client_connect (client, address, options->async, &fetched->error);
  if (connection != NULL)
    fetched->response = exchange (G_IO_STREAM (connection), &fetched->error);
  if (connection != NULL)
    g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);

  if (options->policy != NULL && fetched->tls != NULL)
    pin_tls_policy_check_connection (options->policy, fetched->tls,
                                     &fetched->pin_error);

  test_server_wait (server);
}

/* The server of the last connection received no application data. */
static gboolean
nothing_received (TestServer *server)
{
  g_autoptr(GBytes) received = test_server_get_received (server);

  return g_bytes_get_size (received) == 0;
}

static void
expect_fetched (Scenario   *scenario,
                TestServer *server,
                Fetched    *fetched)
{
  EXPECT_NO_ERROR (fetched->error);
  EXPECT (fetched->response != NULL && g_str_has_suffix (fetched->response, BODY));
  EXPECT_NO_ERROR (fetched->pin_error);
}

/* The connection failed, the server never saw a request, and the pins are
 * the reason. */
static void
expect_refused (Scenario   *scenario,
                TestServer *server,
                Fetched    *fetched)
{
  if (fetched->error != NULL)
    g_string_append_printf (scenario->notes, "the application saw %s %d: %s\n",
                            g_quark_to_string (fetched->error->domain),
                            fetched->error->code, fetched->error->message);

  EXPECT (fetched->error != NULL);
  EXPECT (fetched->response == NULL);
  EXPECT (nothing_received (server));
  EXPECT_ERROR (fetched->pin_error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
}

typedef struct
{
  gboolean async;
  gboolean accept_all;
  gboolean no_validation;
  gboolean proxy;
} ClientVariant;

static void
socket_client_right_pins (Scenario     *scenario,
                          gconstpointer data)
{
  const ClientVariant *variant = data;
  g_autoptr(TestServer) server = https_server ("leaf1-chain.pem", "leaf1.key");
  g_autoptr(PinTlsPolicy) policy = policy_pinning (RIGHT_PINS);
  g_autoptr(GPtrArray) reports = collect_reports (policy);
  g_autoptr(TestProxy) proxy = NULL;
  g_auto(Fetched) fetched = { NULL };
  Fetch options = { policy };

  options.async = variant->async;
  if (variant->proxy)
    options.proxy =
      test_proxy_get_uri (proxy = test_proxy_new (test_server_get_port (server)));

  fetch_with_socket_client (server, &options, &fetched);
  expect_fetched (scenario, server, &fetched);
  EXPECT (reports->len == 1);
  EXPECT (reports->len == 1
          && pin_tls_report_get_verdict (reports->pdata[0])
          == PIN_TLS_VERDICT_MATCHED);
  if (proxy != NULL)
    EXPECT (test_proxy_get_connects (proxy) == 1);
}

static void
socket_client_wrong_pins (Scenario     *scenario,
                          gconstpointer data)
{
  const ClientVariant *variant = data;
  g_autoptr(TestServer) server = https_server ("leaf1-chain.pem", "leaf1.key");
  g_autoptr(PinTlsPolicy) policy = policy_pinning (WRONG_PINS);
  g_autoptr(GPtrArray) reports = collect_reports (policy);
  g_autoptr(TestProxy) proxy = NULL;
  g_auto(Fetched) fetched = { NULL };
  Fetch options = { policy };

  options.async = variant->async;
  options.accept_all = variant->accept_all;
  options.no_validation = variant->no_validation;
  if (variant->proxy)
    options.proxy =
      test_proxy_get_uri (proxy = test_proxy_new (test_server_get_port (server)));

  fetch_with_socket_client (server, &options, &fetched);
  expect_refused (scenario, server, &fetched);
  EXPECT (all_refused (reports));
  if (proxy != NULL)
    EXPECT (test_proxy_get_connects (proxy) == 1);
}

/* A first connection, made without pintls, leaves a session ticket in
 * glib-networking's process-wide cache; a second one, armed with pins the
 * server does not match, resumes that session. */
static void
socket_client_resumed (Scenario     *scenario,
                       gconstpointer data)
{
  const ClientVariant *variant = data;
  g_autoptr(TestServer) server = https_server ("leaf1-chain.pem", "leaf1.key");
  g_autoptr(PinTlsPolicy) policy = policy_pinning (WRONG_PINS);
  g_autoptr(GPtrArray) reports = collect_reports (policy);
  g_autoptr(TestProxy) proxy = NULL;
  g_auto(Fetched) first = { NULL };
  g_auto(Fetched) second = { NULL };
  Fetch unpinned = { NULL };
  Fetch pinned = { policy };

  if (variant->proxy)
    {
      proxy = test_proxy_new (test_server_get_port (server));
      unpinned.proxy = pinned.proxy = test_proxy_get_uri (proxy);
    }
  pinned.async = variant->async;
  pinned.accept_all = variant->accept_all;

  fetch_with_socket_client (server, &unpinned, &first);
  expect_fetched (scenario, server, &first);

  fetch_with_socket_client (server, &pinned, &second);
  EXPECT (test_server_was_resumed (server) == tls_1_3 ());
  expect_refused (scenario, server, &second);
  EXPECT (all_refused (reports));
}

/* The control: a pinning database alone, which is what GIO offers, lets a
 * resumed session through. Were this to fail, the scenarios above would
 * prove nothing about resumption. */
static void
socket_client_database_only (Scenario     *scenario,
                             gconstpointer data)
{
  g_autoptr(TestServer) server = https_server ("leaf1-chain.pem", "leaf1.key");
  g_autoptr(PinTlsPolicy) policy = policy_pinning (WRONG_PINS);
  g_auto(Fetched) first = { NULL };
  g_auto(Fetched) full = { NULL };
  g_auto(Fetched) resumed = { NULL };
  Fetch unpinned = { NULL };
  Fetch database_only = { policy, TRUE };

  /* Without a ticket, the database refuses the full handshake. */
  fetch_with_socket_client (server, &database_only, &full);
  EXPECT_ERROR (full.error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);

  if (!tls_1_3 ())
    {
      skip (scenario,
            "glib-networking 2.74 does not resume TLS 1.2 sessions itself");
      return;
    }

  fetch_with_socket_client (server, &unpinned, &first);
  expect_fetched (scenario, server, &first);
  fetch_with_socket_client (server, &database_only, &resumed);
  EXPECT (test_server_was_resumed (server));
  EXPECT_NO_ERROR (resumed.error);
  EXPECT (resumed.response != NULL && g_str_has_suffix (resumed.response, BODY));
}

/* libsoup ------------------------------------------------------------------ */

#ifdef HAVE_LIBSOUP

typedef struct
{
  PinTlsPolicy *policy;
  gboolean accept_all;
  const char *proxy;
} SoupFetch;

static void
unref_policy (gpointer  policy,
              GClosure *closure)
{
  g_object_unref (policy);
}

static void
network_event_cb (SoupMessage       *message,
                  GSocketClientEvent event,
                  GIOStream         *connection,
                  PinTlsPolicy      *policy)
{
  pin_tls_policy_handle_network_event (policy, event, connection);
}

/* What the documentation tells applications to do. */
static void
request_queued_cb (SoupSession  *session,
                   SoupMessage  *message,
                   PinTlsPolicy *policy)
{
  g_signal_connect_data (message, "network-event", G_CALLBACK (network_event_cb),
                         g_object_ref (policy),
                         unref_policy, 0);
}

static void
remember_connection_cb (SoupMessage       *message,
                        GSocketClientEvent event,
                        GIOStream         *connection,
                        Fetched           *fetched)
{
  if (G_IS_TLS_CONNECTION (connection))
    g_set_object (&fetched->tls, G_TLS_CONNECTION (connection));
}

static gboolean
accept_all_soup_cb (SoupMessage         *message,
                    GTlsCertificate     *certificate,
                    GTlsCertificateFlags errors,
                    gpointer             user_data)
{
  return TRUE;
}

static SoupSession *
soup_session_for (const SoupFetch *options)
{
  SoupSession *session = soup_session_new ();
  g_autoptr(GProxyResolver) resolver = NULL;

  soup_session_set_tls_database (session, trust_database);
  if (options->proxy != NULL)
    {
      resolver = g_simple_proxy_resolver_new (options->proxy, NULL);
      soup_session_set_proxy_resolver (session, resolver);
    }
  if (options->policy != NULL)
    g_signal_connect_data (session, "request-queued", G_CALLBACK (request_queued_cb),
                           g_object_ref (options->policy),
                           unref_policy, 0);

  return session;
}

static void
fetch_with_soup (SoupSession     *session,
                 const char      *url,
                 const SoupFetch *options,
                 Fetched         *fetched)
{
  g_autoptr(SoupMessage) message = soup_message_new ("GET", url);
  g_autoptr(GBytes) body = NULL;

  g_signal_connect (message, "network-event", G_CALLBACK (remember_connection_cb),
                    fetched);
  if (options->accept_all)
    g_signal_connect (message, "accept-certificate", G_CALLBACK (accept_all_soup_cb),
                      NULL);

  body = soup_session_send_and_read (session, message, NULL, &fetched->error);
  if (body != NULL && soup_message_get_status (message) == SOUP_STATUS_OK)
    fetched->response =
      g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));

  if (options->policy != NULL && fetched->tls != NULL)
    pin_tls_policy_check_connection (options->policy, fetched->tls,
                                     &fetched->pin_error);
}

typedef struct
{
  gboolean accept_all;
  gboolean proxy;
} SoupVariant;

static void
soup_right_pins (Scenario     *scenario,
                 gconstpointer data)
{
  const SoupVariant *variant = data;
  g_autoptr(TestServer) server = https_server ("leaf1-chain.pem", "leaf1.key");
  g_autoptr(PinTlsPolicy) policy = policy_pinning (RIGHT_PINS);
  g_autoptr(GPtrArray) reports = collect_reports (policy);
  g_autoptr(TestProxy) proxy = NULL;
  g_autoptr(SoupSession) session = NULL;
  g_autofree char *url = url_for (server, "host.test");
  g_auto(Fetched) fetched = { NULL };
  SoupFetch options = { policy };

  if (variant->proxy)
    options.proxy =
      test_proxy_get_uri (proxy = test_proxy_new (test_server_get_port (server)));
  session = soup_session_for (&options);

  fetch_with_soup (session, url, &options, &fetched);
  test_server_wait (server);
  expect_fetched (scenario, server, &fetched);
  EXPECT (reports->len == 1);
  if (proxy != NULL)
    EXPECT (test_proxy_get_connects (proxy) == 1);
}

static void
soup_wrong_pins (Scenario     *scenario,
                 gconstpointer data)
{
  const SoupVariant *variant = data;
  g_autoptr(TestServer) server = https_server ("leaf1-chain.pem", "leaf1.key");
  g_autoptr(PinTlsPolicy) policy = policy_pinning (WRONG_PINS);
  g_autoptr(GPtrArray) reports = collect_reports (policy);
  g_autoptr(TestProxy) proxy = NULL;
  g_autoptr(SoupSession) session = NULL;
  g_autofree char *url = url_for (server, "host.test");
  g_auto(Fetched) fetched = { NULL };
  SoupFetch options = { policy };

  options.accept_all = variant->accept_all;
  if (variant->proxy)
    options.proxy =
      test_proxy_get_uri (proxy = test_proxy_new (test_server_get_port (server)));
  session = soup_session_for (&options);

  fetch_with_soup (session, url, &options, &fetched);
  test_server_wait (server);
  expect_refused (scenario, server, &fetched);
  EXPECT (test_server_get_received_total (server) == 0);
  EXPECT (all_refused (reports));
}

/* A second SoupSession resumes the session a first one, without pintls,
 * left in glib-networking's cache. */
static void
soup_second_session (Scenario     *scenario,
                     gconstpointer data)
{
  const SoupVariant *variant = data;
  g_autoptr(TestServer) server = https_server ("leaf1-chain.pem", "leaf1.key");
  g_autoptr(PinTlsPolicy) policy = policy_pinning (WRONG_PINS);
  g_autoptr(GPtrArray) reports = collect_reports (policy);
  g_autoptr(TestProxy) proxy = NULL;
  g_autoptr(SoupSession) unpinned_session = NULL;
  g_autoptr(SoupSession) pinned_session = NULL;
  g_autofree char *url = url_for (server, "host.test");
  g_auto(Fetched) first = { NULL };
  g_auto(Fetched) second = { NULL };
  SoupFetch unpinned = { NULL };
  SoupFetch pinned = { policy };
  gsize received;

  if (variant->proxy)
    {
      proxy = test_proxy_new (test_server_get_port (server));
      unpinned.proxy = pinned.proxy = test_proxy_get_uri (proxy);
    }
  pinned.accept_all = variant->accept_all;
  unpinned_session = soup_session_for (&unpinned);
  pinned_session = soup_session_for (&pinned);

  fetch_with_soup (unpinned_session, url, &unpinned, &first);
  test_server_wait (server);
  expect_fetched (scenario, server, &first);
  received = test_server_get_received_total (server);

  fetch_with_soup (pinned_session, url, &pinned, &second);
  test_server_wait (server);
  EXPECT (test_server_was_resumed (server) == tls_1_3 ());
  expect_refused (scenario, server, &second);
  EXPECT (test_server_get_received_total (server) == received);
  EXPECT (all_refused (reports));
}

/* The control for libsoup: a pinning database given to the session lets a
 * resumed session through. */
static void
soup_database_only (Scenario     *scenario,
                    gconstpointer data)
{
  g_autoptr(TestServer) server = https_server ("leaf1-chain.pem", "leaf1.key");
  g_autoptr(PinTlsPolicy) policy = policy_pinning (WRONG_PINS);
  g_autoptr(PinTlsDatabase) database =
    pin_tls_database_new (policy, trust_database);
  g_autoptr(SoupSession) unpinned_session = NULL;
  g_autoptr(SoupSession) database_session = NULL;
  g_autofree char *url = url_for (server, "host.test");
  g_auto(Fetched) first = { NULL };
  g_auto(Fetched) second = { NULL };
  SoupFetch unpinned = { NULL };

  if (!tls_1_3 ())
    {
      skip (scenario,
            "glib-networking 2.74 does not resume TLS 1.2 sessions itself");
      return;
    }

  unpinned_session = soup_session_for (&unpinned);
  database_session = soup_session_for (&unpinned);
  soup_session_set_tls_database (database_session, G_TLS_DATABASE (database));

  fetch_with_soup (unpinned_session, url, &unpinned, &first);
  test_server_wait (server);
  expect_fetched (scenario, server, &first);
  fetch_with_soup (database_session, url, &unpinned, &second);
  test_server_wait (server);
  EXPECT (test_server_was_resumed (server));
  EXPECT_NO_ERROR (second.error);
  EXPECT (second.response != NULL && g_str_has_suffix (second.response, BODY));
}

/* A libsoup program pinned through pintls, facing an impostor (a server
 * with a valid certificate for host.test under a trusted CA, but not the
 * pinned key), is refused on every connection, including those that
 * resume a session some unpinned code in the same process opened. */
static void
soup_impostor_every_connection (Scenario     *scenario,
                                gconstpointer data)
{
  g_autoptr(TestServer) server = https_server ("leaf2-chain.pem", "leaf2.key");
  g_autoptr(PinTlsPolicy) policy = policy_pinning (RIGHT_PINS);
  g_autoptr(GPtrArray) reports = collect_reports (policy);
  g_autoptr(SoupSession) unpinned_session = NULL;
  g_autofree char *url = url_for (server, "host.test");
  SoupFetch unpinned = { NULL };
  SoupFetch pinned = { policy };
  gboolean any_resumed = FALSE;
  gsize received;
  guint i;

  unpinned_session = soup_session_for (&unpinned);
  for (i = 0; i < 2; i++)
    {
      g_auto(Fetched) fetched = { NULL };

      fetch_with_soup (unpinned_session, url, &unpinned, &fetched);
      test_server_wait (server);
      expect_fetched (scenario, server, &fetched);
    }
  received = test_server_get_received_total (server);

  /* One session for several requests, then a session per request. */
  for (i = 0; i < 4; i++)
    {
      g_autoptr(SoupSession) session = soup_session_for (&pinned);
      g_auto(Fetched) fetched = { NULL };
      guint j;

      for (j = 0; j < (i == 0 ? 3 : 1); j++)
        {
          g_clear_pointer (&fetched.error, g_error_free);
          g_clear_object (&fetched.tls);
          g_clear_error (&fetched.pin_error);
          fetch_with_soup (session, url, &pinned, &fetched);
          test_server_wait (server);
          any_resumed |= test_server_was_resumed (server);
          expect_refused (scenario, server, &fetched);
        }
    }

  EXPECT (any_resumed == tls_1_3 ());
  EXPECT (test_server_get_received_total (server) == received);
  EXPECT (reports->len >= 6);
  EXPECT (all_refused (reports));
}

/* The spellings of a pinned name (upper case, a trailing dot, an IDN in
 * either form) reach the same entry through libsoup. */
static void
soup_spellings (Scenario     *scenario,
                gconstpointer data)
{
  const char *const idn_hosts[] = { "xn--bcher-kva.test", "XN--BCHER-KVA.TEST",
                                    "bücher.test", "BÜCHER.test", NULL };
  g_autoptr(TestServer) impostor = https_server ("idn2-chain.pem", "idn2.key");
  g_autoptr(TestServer) genuine = https_server ("idn-chain.pem", "idn.key");
  g_autoptr(PinTlsPolicy) policy = pin_tls_policy_new ();
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("idn.pem", "leaf3.pem", NULL);
  g_autoptr(PinTlsPolicyEntry) entry =
    pin_tls_policy_entry_new ("Bücher.TEST.", pins, NULL);
  SoupFetch options = { policy };
  guint i;

  g_assert_true (pin_tls_policy_add_entry (policy, entry, NULL));
  for (i = 0; idn_hosts[i] != NULL; i++)
    {
      g_autoptr(SoupSession) session = soup_session_for (&options);
      g_autofree char *impostor_url = url_for (impostor, idn_hosts[i]);
      g_autofree char *genuine_url = url_for (genuine, idn_hosts[i]);
      g_auto(Fetched) refused = { NULL };
      g_auto(Fetched) accepted = { NULL };

      fetch_with_soup (session, impostor_url, &options, &refused);
      test_server_wait (impostor);
      expect_refused (scenario, impostor, &refused);

      fetch_with_soup (session, genuine_url, &options, &accepted);
      test_server_wait (genuine);
      expect_fetched (scenario, genuine, &accepted);
    }
}

/* A trailing dot or upper case does not take host.test out of its entry:
 * the impostor is refused for its pins under every spelling, and the
 * genuine server works under the spellings its certificate names. */
static void
soup_trailing_dot_and_case (Scenario     *scenario,
                            gconstpointer data)
{
  const char *const hosts[] = { "host.test.", "HOST.test", "Host.Test.", NULL };
  g_autoptr(TestServer) impostor = https_server ("leaf2-chain.pem", "leaf2.key");
  g_autoptr(TestServer) genuine = https_server ("leaf1-chain.pem", "leaf1.key");
  g_autoptr(PinTlsPolicy) policy = policy_pinning (RIGHT_PINS);
  SoupFetch options = { policy };
  guint i;

  for (i = 0; hosts[i] != NULL; i++)
    {
      g_autoptr(SoupSession) session = soup_session_for (&options);
      g_autofree char *impostor_url = url_for (impostor, hosts[i]);
      g_auto(Fetched) refused = { NULL };

      fetch_with_soup (session, impostor_url, &options, &refused);
      test_server_wait (impostor);
      expect_refused (scenario, impostor, &refused);
    }

  {
    g_autoptr(SoupSession) session = soup_session_for (&options);
    g_autofree char *genuine_url = url_for (genuine, "HOST.Test");
    g_auto(Fetched) accepted = { NULL };

    fetch_with_soup (session, genuine_url, &options, &accepted);
    test_server_wait (genuine);
    expect_fetched (scenario, genuine, &accepted);
  }
}

#endif /* HAVE_LIBSOUP */

#ifndef HAVE_LIBSOUP
static void
soup_missing (Scenario     *scenario,
              gconstpointer data)
{
  skip (scenario, "libsoup 3 was not found when pintls was configured");
}
#endif

/* nginx -------------------------------------------------------------------- */

/* nginx, started by nginx.py, serves leaf1-chain.pem, and /file. */
static guint16
nginx_port (void)
{
  const char *colon = strrchr (nginx_address, ':');

  return (guint16) g_ascii_strtoull (colon + 1, NULL, 10);
}

static GSocketConnection *
nginx_connect (PinTlsPolicy *policy,
               Fetched      *fetched)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autofree char *address = g_strdup_printf ("host.test:%u", nginx_port ());
  Fetch options = { policy };
  FetchState state = { &options, fetched };

  g_socket_client_set_tls (client, TRUE);
  g_signal_connect (client, "event", G_CALLBACK (client_event_cb), &state);
  if (policy != NULL)
    pin_tls_policy_arm_socket_client (policy, client);

  return g_socket_client_connect_to_host (client, address, 443, NULL,
                                          &fetched->error);
}

static void
nginx_fetch (PinTlsPolicy *policy,
             Fetched      *fetched)
{
  g_autoptr(GSocketConnection) connection = nginx_connect (policy, fetched);

  if (connection != NULL)
    fetched->response = exchange (G_IO_STREAM (connection), &fetched->error);
  if (connection != NULL)
    g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  if (policy != NULL && fetched->tls != NULL)
    pin_tls_policy_check_connection (policy, fetched->tls, &fetched->pin_error);
}

static void
nginx_socket_client (Scenario     *scenario,
                     gconstpointer data)
{
  g_autoptr(PinTlsPolicy) right = policy_pinning (RIGHT_PINS);
  g_autoptr(PinTlsPolicy) wrong = policy_pinning (WRONG_PINS);
  g_auto(Fetched) accepted = { NULL };
  g_auto(Fetched) unpinned = { NULL };
  g_auto(Fetched) refused = { NULL };

  if (nginx_address == NULL)
    {
      skip (scenario, "no nginx given (tests/nginx.py starts one)");
      return;
    }

  nginx_fetch (right, &accepted);
  EXPECT_NO_ERROR (accepted.error);
  EXPECT (accepted.response != NULL && strstr (accepted.response, "200 OK") != NULL);

  /* A ticket from an unpinned connection, then pins nginx does not match:
   * refused, resumed or not. */
  nginx_fetch (NULL, &unpinned);
  EXPECT_NO_ERROR (unpinned.error);
  nginx_fetch (wrong, &refused);
  EXPECT (refused.error != NULL);
  EXPECT (refused.response == NULL);
  EXPECT_ERROR (refused.pin_error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
}

#ifdef HAVE_LIBSOUP
static void
nginx_soup (Scenario     *scenario,
            gconstpointer data)
{
  g_autoptr(PinTlsPolicy) right = policy_pinning (RIGHT_PINS);
  g_autoptr(PinTlsPolicy) wrong = policy_pinning (WRONG_PINS);
  g_autoptr(SoupSession) right_session = NULL;
  g_autoptr(SoupSession) unpinned_session = NULL;
  g_autoptr(SoupSession) wrong_session = NULL;
  g_autofree char *url = NULL;
  SoupFetch right_options = { right };
  SoupFetch unpinned_options = { NULL };
  SoupFetch wrong_options = { wrong };
  guint i;

  if (nginx_address == NULL)
    {
      skip (scenario, "no nginx given (tests/nginx.py starts one)");
      return;
    }

  url = g_strdup_printf ("https://host.test:%u/file", nginx_port ());
  right_session = soup_session_for (&right_options);
  unpinned_session = soup_session_for (&unpinned_options);
  wrong_session = soup_session_for (&wrong_options);

  for (i = 0; i < 2; i++)
    {
      g_auto(Fetched) accepted = { NULL };
      g_auto(Fetched) unpinned = { NULL };
      g_auto(Fetched) refused = { NULL };

      fetch_with_soup (right_session, url, &right_options, &accepted);
      EXPECT_NO_ERROR (accepted.error);
      EXPECT (accepted.response != NULL
              && g_str_has_prefix (accepted.response, "nginx"));

      fetch_with_soup (unpinned_session, url, &unpinned_options, &unpinned);
      EXPECT_NO_ERROR (unpinned.error);

      fetch_with_soup (wrong_session, url, &wrong_options, &refused);
      EXPECT (refused.error != NULL);
      EXPECT_ERROR (refused.pin_error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
    }
}
#endif

/* main --------------------------------------------------------------------- */

static const ClientVariant sync_client = { FALSE };
static const ClientVariant async_client = { TRUE };
static const ClientVariant accepting_client = { FALSE, TRUE };
static const ClientVariant unvalidating_client = { FALSE, FALSE, TRUE };
static const ClientVariant proxied_client = { FALSE, FALSE, FALSE, TRUE };

#ifdef HAVE_LIBSOUP
static const SoupVariant plain_soup = { FALSE };
static const SoupVariant accepting_soup = { TRUE };
static const SoupVariant proxied_soup = { FALSE, TRUE };
#endif

static void
parse_arguments (int    argc,
                 char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  GOptionEntry entries[] = { { "nginx", 0, 0, G_OPTION_ARG_STRING, &nginx_address,
                               "An nginx serving data/certs/leaf1-chain.pem",
                               "HOST:PORT" },
                             G_OPTION_ENTRY_NULL };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      printf ("Bail out! %s\n", error->message);
      exit (1);
    }
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *ca = NULL;
  g_autoptr(GError) error = NULL;

  parse_arguments (argc, argv);
  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    {
      printf ("1..0 # SKIP no TLS backend (install glib-networking)\n");
      return 0;
    }

  ca = test_data_path ("rootA.pem");
  trust_database = g_tls_file_database_new (ca, &error);
  g_assert_no_error (error);
  test_resolve_test_names ();

  run ("socket-client/right-pins", socket_client_right_pins, &sync_client);
  run ("socket-client/right-pins/async", socket_client_right_pins, &async_client);
  run ("socket-client/right-pins/proxy", socket_client_right_pins, &proxied_client);
  run ("socket-client/wrong-pins", socket_client_wrong_pins, &sync_client);
  run ("socket-client/wrong-pins/async", socket_client_wrong_pins, &async_client);
  run ("socket-client/wrong-pins/accept-certificate", socket_client_wrong_pins,
       &accepting_client);
  run ("socket-client/wrong-pins/no-validation-flags", socket_client_wrong_pins,
       &unvalidating_client);
  run ("socket-client/wrong-pins/proxy", socket_client_wrong_pins, &proxied_client);
  run ("socket-client/resumed", socket_client_resumed, &sync_client);
  run ("socket-client/resumed/async", socket_client_resumed, &async_client);
  run ("socket-client/resumed/accept-certificate", socket_client_resumed,
       &accepting_client);
  run ("socket-client/resumed/proxy", socket_client_resumed, &proxied_client);
  run ("socket-client/control/database-only-lets-resumed-through",
       socket_client_database_only, NULL);

#ifdef HAVE_LIBSOUP
  run ("soup/right-pins", soup_right_pins, &plain_soup);
  run ("soup/right-pins/proxy", soup_right_pins, &proxied_soup);
  run ("soup/wrong-pins", soup_wrong_pins, &plain_soup);
  run ("soup/wrong-pins/accept-certificate", soup_wrong_pins, &accepting_soup);
  run ("soup/wrong-pins/proxy", soup_wrong_pins, &proxied_soup);
  run ("soup/second-session", soup_second_session, &plain_soup);
  run ("soup/second-session/accept-certificate", soup_second_session,
       &accepting_soup);
  run ("soup/second-session/proxy", soup_second_session, &proxied_soup);
  run ("soup/control/database-only-lets-resumed-through", soup_database_only, NULL);
  run ("soup/impostor-on-every-connection", soup_impostor_every_connection, NULL);
  run ("soup/spellings", soup_spellings, NULL);
  run ("soup/spellings/trailing-dot-and-case", soup_trailing_dot_and_case, NULL);
  run ("nginx/soup", nginx_soup, NULL);
#else
  run ("soup", soup_missing, NULL);
#endif
  run ("nginx/socket-client", nginx_socket_client, NULL);

  printf ("1..%u\n", n_scenarios);
  g_object_unref (trust_database);

  return n_failed > 0 ? 1 : 0;
}
