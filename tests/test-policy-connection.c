/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* PinTlsClientConnection and the connect helpers with a PinTlsPolicy
 * instead of a pin set, against the in-process test server. The servers
 * present host.test certificates under rootA, which the connections trust
 * in CA_AND_PINS mode; the test resolver sends every name in .test to
 * 127.0.0.1. */

#include "test-utils.h"

#include <string.h>

static const TestServerOptions leaf1_server = { "leaf1-chain.pem", "leaf1.key" };
static const TestServerOptions leaf2_server = { "leaf2-chain.pem", "leaf2.key" };
static const TestServerOptions self_server = { "self.pem", "self.key" };
static const TestServerOptions other_server = { "other-chain.pem", "other.key" };
static const TestServerOptions idn_server = { "idn-chain.pem", "idn.key" };
static const TestServerOptions idn2_server = { "idn2-chain.pem", "idn2.key" };
static const TestServerOptions a_server = { "a.pem", "a.key" };
static const TestServerOptions b_with_a_key_server = {
  "b-with-a-key.pem", "b-with-a-key.key"
};
static const TestServerOptions resuming_server = {
  "leaf1-chain.pem", "leaf1.key",
  .tickets = TRUE,
};

/* Helpers ------------------------------------------------------------------ */

typedef struct
{
  PinTlsPolicy *policy;
  GPtrArray *reports;
  TestServer *server;
  GTlsDatabase *trust;
  GDateTime *now;
} Fixture;

static void
report_cb (PinTlsPolicy *policy,
           PinTlsReport *report,
           GPtrArray    *reports)
{
  g_ptr_array_add (reports, g_object_ref (report));
}

static GDateTime *
fixture_now (gpointer user_data)
{
  Fixture *fixture = user_data;

  return g_date_time_ref (fixture->now);
}

static void
fixture_setup (Fixture      *fixture,
               gconstpointer data)
{
  g_autofree char *ca = test_data_path ("rootA.pem");
  g_autoptr(GError) error = NULL;

  fixture->policy = pin_tls_policy_new ();
  fixture->reports = g_ptr_array_new_with_free_func (g_object_unref);
  g_signal_connect (fixture->policy, "report", G_CALLBACK (report_cb), fixture->reports);
  fixture->now = g_date_time_new_now_utc ();
  _pin_tls_policy_set_now_func (fixture->policy, fixture_now, fixture);
  fixture->trust = g_tls_file_database_new (ca, &error);
  g_assert_no_error (error);
  if (data != NULL)
    fixture->server = test_server_new (data);
}

static void
fixture_teardown (Fixture      *fixture,
                  gconstpointer data)
{
  g_clear_pointer (&fixture->server, test_server_free);
  g_assert_finalize_object (fixture->policy);
  g_ptr_array_unref (fixture->reports);
  g_object_unref (fixture->trust);
  g_date_time_unref (fixture->now);
}

/* An entry for @pattern pinning the public keys of the first certificate
 * of each file, in @mode, possibly report-only; returned unowned. */
static PinTlsPolicyEntry *
add_entry_full (Fixture    *fixture,
                const char *pattern,
                PinTlsMode  mode,
                gboolean    report_only,
                const char *first_file,
                ...)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(PinTlsPinSet) pins = NULL;
  g_autoptr(PinTlsPolicyEntry) entry = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) strings = NULL;
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
  entry = pin_tls_policy_entry_new (pattern, pins, &error);
  g_assert_no_error (error);
  pin_tls_policy_entry_set_mode (entry, mode);
  pin_tls_policy_entry_set_report_only (entry, report_only);
  g_assert_true (pin_tls_policy_add_entry (fixture->policy, entry, &error));

  return entry;
}

#define add_entry(fixture, pattern, mode, ...) \
  add_entry_full (fixture, pattern, mode, FALSE, __VA_ARGS__)

#define CA PIN_TLS_MODE_CA_AND_PINS
#define PIN_ONLY PIN_TLS_MODE_PIN_ONLY

/* A connection to @server, for the server identity @name, with the
 * fixture's policy and rootA as the trust for CA_AND_PINS entries. */
static PinTlsClientConnection *
connection_for (Fixture    *fixture,
                TestServer *server,
                const char *name)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(GError) error = NULL;
  PinTlsClientConnection *connection;

  tcp = g_socket_client_connect_to_host (client, test_server_get_address (server), 0, NULL,
                                         &error);
  g_assert_no_error (error);
  identity = g_network_address_new (name, test_server_get_port (server));
  connection = pin_tls_client_connection_new_with_policy (G_IO_STREAM (tcp), identity,
                                                          fixture->policy, &error);
  g_assert_no_error (error);
  g_tls_connection_set_database (G_TLS_CONNECTION (connection), fixture->trust);

  return connection;
}

/* Handshakes with the fixture's server as @name: TRUE, or FALSE and the
 * error. The server is done with the connection when this returns. */
static gboolean
handshake (Fixture    *fixture,
           TestServer *server,
           const char *name,
           GError    **error)
{
  g_autoptr(PinTlsClientConnection) connection = connection_for (fixture, server, name);
  gboolean done;

  done = g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, error);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  test_server_wait (server);

  return done;
}

static void
assert_accepted (Fixture    *fixture,
                 const char *name)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (handshake (fixture, fixture->server, name, &error));
  g_assert_no_error (error);
}

static void
assert_refused (Fixture    *fixture,
                const char *name,
                GQuark      domain,
                int         code)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (handshake (fixture, fixture->server, name, &error));
  g_assert_error (error, domain, code);
}

static PinTlsReport *
last_report (Fixture *fixture)
{
  g_assert_cmpuint (fixture->reports->len, >, 0);
  return fixture->reports->pdata[fixture->reports->len - 1];
}

/* Tests -------------------------------------------------------------------- */

static void
test_properties (Fixture      *fixture,
                 gconstpointer data)
{
  g_autoptr(PinTlsClientConnection) connection = NULL;

  add_entry (fixture, "host.test", CA, "leaf1.pem", "leaf3.pem", NULL);
  connection = connection_for (fixture, fixture->server, "host.test");
  g_assert_true (pin_tls_client_connection_get_policy (connection) == fixture->policy);
  g_assert_null (pin_tls_client_connection_get_pins (connection));
  g_assert_true (g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, NULL));
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  test_server_wait (fixture->server);
}

static void
test_right_pins (Fixture      *fixture,
                 gconstpointer data)
{
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GOutputStream *output;
  GInputStream *input;
  char reply[5] = { 0 };

  add_entry (fixture, "host.test", CA, "leaf1.pem", "leaf3.pem", NULL);
  connection = connection_for (fixture, fixture->server, "host.test");
  output = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  input = g_io_stream_get_input_stream (G_IO_STREAM (connection));

  g_assert_true (g_output_stream_write_all (output, "ping\n", 5, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_input_stream_read_all (input, reply, 5, NULL, NULL, &error));
  g_assert_cmpmem (reply, 5, "ping\n", 5);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  test_server_wait (fixture->server);

  g_assert_cmpuint (fixture->reports->len, ==, 1);
  g_assert_cmpint (pin_tls_report_get_verdict (last_report (fixture)), ==,
                   PIN_TLS_VERDICT_MATCHED);
  g_assert_cmpuint (pin_tls_report_get_port (last_report (fixture)), ==,
                    test_server_get_port (fixture->server));
}

/* An impostor: a valid certificate for the name, from a trusted CA, with
 * another key. The server gets the fatal alert, and no data. */
static void
test_wrong_pins (Fixture      *fixture,
                 gconstpointer data)
{
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) received = NULL;
  GOutputStream *output;

  add_entry (fixture, "host.test", CA, "leaf1.pem", "leaf3.pem", NULL);
  connection = connection_for (fixture, fixture->server, "host.test");
  output = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_assert_false (g_output_stream_write_all (output, "secret\n", 7, NULL, NULL, &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);

  /* Closing at once could reset the TCP connection before the server has
   * read the alert: wait for the server first. */
  test_server_wait (fixture->server);
  g_clear_object (&connection);
  g_assert_cmpint (test_server_get_alert (fixture->server), ==, GNUTLS_A_BAD_CERTIFICATE);
  received = test_server_get_received (fixture->server);
  g_assert_cmpuint (g_bytes_get_size (received), ==, 0);
  g_assert_true (pin_tls_report_get_refused (last_report (fixture)));
}

/* A host the policy does not cover is refused before anything is sent. */
static void
test_host_not_pinned (Fixture      *fixture,
                      gconstpointer data)
{
  add_entry (fixture, "host.test", CA, "leaf1.pem", "leaf3.pem", NULL);
  assert_refused (fixture, "www.host.test", PIN_TLS_ERROR, PIN_TLS_ERROR_HOST_NOT_PINNED);
  g_assert_false (test_server_got_client_hello (fixture->server));
  assert_refused (fixture, "nothost.test", PIN_TLS_ERROR, PIN_TLS_ERROR_HOST_NOT_PINNED);
  g_assert_cmpuint (fixture->reports->len, ==, 0);
}

/* With unpinned hosts left to certificate authorities, those do decide. */
static void
test_unpinned_ca_only (Fixture      *fixture,
                       gconstpointer data)
{
  g_autoptr(TestServer) other = test_server_new (&other_server);
  g_autoptr(GError) error = NULL;

  add_entry (fixture, "host.test", CA, "leaf1.pem", "leaf3.pem", NULL);
  pin_tls_policy_set_refuse_unpinned (fixture->policy, FALSE);

  g_assert_true (handshake (fixture, other, "other.test", &error));
  g_assert_no_error (error);
  assert_refused (fixture, "other.test", G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_cmpuint (fixture->reports->len, ==, 0);
}

/* The entry's mode applies, not the connection's. */
static void
test_entry_mode (Fixture      *fixture,
                 gconstpointer data)
{
  g_autoptr(PinTlsClientConnection) connection = NULL;

  add_entry (fixture, "host.test", PIN_ONLY, "self.pem", "leaf3.pem", NULL);
  connection = connection_for (fixture, fixture->server, "host.test");
  pin_tls_client_connection_set_mode (connection, PIN_TLS_MODE_CA_AND_PINS);
  g_assert_true (g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, NULL));
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  test_server_wait (fixture->server);
}

static void
test_report_only (Fixture      *fixture,
                  gconstpointer data)
{
  g_autoptr(TestServer) self = test_server_new (&self_server);
  g_autoptr(GError) error = NULL;

  add_entry_full (fixture, "host.test", PIN_ONLY, TRUE, "leaf1.pem", "self.pem", NULL);

  /* leaf2 matches no pin, but the CA vouches for it: reported, accepted. */
  assert_accepted (fixture, "host.test");
  g_assert_cmpint (pin_tls_report_get_verdict (last_report (fixture)), ==,
                   PIN_TLS_VERDICT_PIN_MISMATCH);
  g_assert_true (pin_tls_report_get_report_only (last_report (fixture)));
  g_assert_false (pin_tls_report_get_refused (last_report (fixture)));

  /* A self-signed server matches a pin, but nothing else vouches for it. */
  g_assert_false (handshake (fixture, self, "host.test", &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
}

static void
test_expiry (Fixture      *fixture,
             gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  PinTlsPolicyEntry *entry;
  g_autoptr(GTimeZone) utc = g_time_zone_new_utc ();
  g_autoptr(GDateTime) expires = g_date_time_new (utc, 2030, 1, 1, 0, 0, 0);

  entry = pin_tls_policy_entry_new ("host.test", pins, NULL);
  pin_tls_policy_entry_set_expires (entry, expires);
  g_assert_true (pin_tls_policy_add_entry (fixture->policy, entry, NULL));
  g_object_unref (entry);

  g_date_time_unref (fixture->now);
  fixture->now = g_date_time_new (utc, 2029, 12, 31, 23, 59, 59);
  assert_refused (fixture, "host.test", PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);

  g_date_time_unref (fixture->now);
  fixture->now = g_date_time_new (utc, 2030, 1, 1, 0, 0, 1);
  assert_refused (fixture, "host.test", PIN_TLS_ERROR, PIN_TLS_ERROR_PINS_EXPIRED);
  g_assert_cmpint (pin_tls_report_get_verdict (last_report (fixture)), ==,
                   PIN_TLS_VERDICT_PINS_EXPIRED);
}

static void
test_expiry_falls_back (Fixture      *fixture,
                        gconstpointer data)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  PinTlsPolicyEntry *entry;
  g_autoptr(GTimeZone) utc = g_time_zone_new_utc ();
  g_autoptr(GDateTime) expires = g_date_time_new (utc, 2030, 1, 1, 0, 0, 0);

  entry = pin_tls_policy_entry_new ("host.test", pins, NULL);
  pin_tls_policy_entry_set_expires (entry, expires);
  pin_tls_policy_entry_set_fall_back_to_ca (entry, TRUE);
  g_assert_true (pin_tls_policy_add_entry (fixture->policy, entry, NULL));
  g_object_unref (entry);

  g_date_time_unref (fixture->now);
  fixture->now = g_date_time_new (utc, 2030, 1, 1, 0, 0, 1);
  assert_accepted (fixture, "host.test");
  g_assert_cmpint (pin_tls_report_get_verdict (last_report (fixture)), ==,
                   PIN_TLS_VERDICT_PINS_EXPIRED);
  g_assert_false (pin_tls_report_get_refused (last_report (fixture)));
}

/* Every spelling of host.test is pinned (a trailing dot, upper case), and
 * so are both forms of an internationalised name. */
static void
test_spellings (Fixture      *fixture,
                gconstpointer data)
{
  const char *const host_spellings[] = { "host.test.", "HOST.test", "Host.Test.", NULL };
  const char *const idn_spellings[] = { "bücher.test", "BÜCHER.test",
                                        "xn--bcher-kva.test", "XN--BCHER-KVA.TEST.", NULL };
  g_autoptr(TestServer) idn = test_server_new (&idn_server);
  g_autoptr(TestServer) idn2 = test_server_new (&idn2_server);
  guint i;

  add_entry (fixture, "HOST.test.", CA, "leaf1.pem", "leaf3.pem", NULL);
  add_entry (fixture, "Bücher.Test", CA, "idn.pem", "leaf3.pem", NULL);

  for (i = 0; host_spellings[i] != NULL; i++)
    assert_refused (fixture, host_spellings[i], PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  assert_refused (fixture, "host.test..", G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);

  for (i = 0; idn_spellings[i] != NULL; i++)
    {
      g_autoptr(GError) refused = NULL;
      g_autoptr(GError) accepted = NULL;

      g_assert_false (handshake (fixture, idn2, idn_spellings[i], &refused));
      g_assert_error (refused, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
      g_assert_true (handshake (fixture, idn, idn_spellings[i], &accepted));
      g_assert_no_error (accepted);
    }
}

/* One host's pins never satisfy another: b.test presented with a.test's
 * key, and a.test presented with a key no entry of its own lists. */
static void
test_pins_scoped_to_host (Fixture      *fixture,
                          gconstpointer data)
{
  g_autoptr(TestServer) a = test_server_new (&a_server);
  g_autoptr(TestServer) b_with_a_key = test_server_new (&b_with_a_key_server);
  g_autoptr(GError) a_error = NULL;
  g_autoptr(GError) b_error = NULL;

  add_entry (fixture, "a.test", PIN_ONLY, "a.pem", "leaf3.pem", NULL);
  add_entry (fixture, "b.test", PIN_ONLY, "b.pem", "leaf3.pem", NULL);

  g_assert_true (handshake (fixture, a, "a.test", NULL));
  g_assert_false (handshake (fixture, b_with_a_key, "b.test", &b_error));
  g_assert_error (b_error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_false (handshake (fixture, fixture->server, "a.test", &a_error));
  g_assert_error (a_error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
}

/* Through an HTTP CONNECT proxy, found with a GSimpleProxyResolver, the
 * pins hold as on a direct connection. */
static void
test_proxy (Fixture      *fixture,
            gconstpointer data)
{
  g_autoptr(TestProxy) proxy = test_proxy_new (test_server_get_port (fixture->server));
  g_autoptr(GProxyResolver) resolver = NULL;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;
  g_autofree char *target = NULL;

  add_entry (fixture, "host.test", CA, "leaf1.pem", "leaf3.pem", NULL);
  address = g_strdup_printf ("host.test:%u", test_server_get_port (fixture->server));
  resolver = g_simple_proxy_resolver_new (test_proxy_get_uri (proxy), NULL);
  g_socket_client_set_proxy_resolver (client, resolver);
  tcp = g_socket_client_connect_to_host (client, address, 0, NULL, &error);
  g_assert_no_error (error);
  identity = g_network_address_parse (address, 0, &error);
  connection = pin_tls_client_connection_new_with_policy (G_IO_STREAM (tcp), identity,
                                                          fixture->policy, &error);
  g_tls_connection_set_database (G_TLS_CONNECTION (connection), fixture->trust);

  g_assert_false (g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, &error));
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_clear_object (&connection);
  test_server_wait (fixture->server);

  g_assert_cmpuint (test_proxy_get_connects (proxy), ==, 1);
  target = test_proxy_get_last_target (proxy);
  g_assert_cmpstr (target, ==, address);
}

/* The connect helper, with pin-only entries: no CA is needed. */
static void
test_connect_helper (Fixture      *fixture,
                     gconstpointer data)
{
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;

  add_entry (fixture, "host.test", PIN_ONLY, "leaf1.pem", "leaf3.pem", NULL);
  address = g_strdup_printf ("host.test:%u", test_server_get_port (fixture->server));

  connection = pin_tls_connect_with_policy (address, 443, fixture->policy, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (PIN_TLS_IS_CLIENT_CONNECTION (connection));
  g_clear_object (&connection);
  test_server_wait (fixture->server);

  g_clear_pointer (&address, g_free);
  address = g_strdup_printf ("www.host.test:%u", test_server_get_port (fixture->server));
  connection = pin_tls_connect_with_policy (address, 443, fixture->policy, NULL, &error);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_HOST_NOT_PINNED);
  g_assert_null (connection);
}

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static void
test_connect_helper_async (Fixture      *fixture,
                           gconstpointer data)
{
  g_autoptr(TestServer) impostor = test_server_new (&leaf2_server);
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;

  add_entry (fixture, "host.test", PIN_ONLY, "leaf1.pem", "leaf3.pem", NULL);
  address = g_strdup_printf ("host.test:%u", test_server_get_port (impostor));

  pin_tls_connect_with_policy_async (address, 443, fixture->policy, NULL, connected_cb,
                                     &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  connection = pin_tls_connect_finish (result, &error);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_null (connection);
  test_server_wait (impostor);
}

/* One exchange with resumption on, under @policy: whether the server
 * resumed a session. */
static gboolean
resumes (Fixture      *fixture,
         PinTlsPolicy *policy)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(PinTlsClientConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GOutputStream *output;
  GInputStream *input;
  char byte;

  tcp = g_socket_client_connect_to_host (client, test_server_get_address (fixture->server),
                                         0, NULL, &error);
  g_assert_no_error (error);
  identity = g_network_address_new ("host.test", test_server_get_port (fixture->server));
  connection = pin_tls_client_connection_new_with_policy (G_IO_STREAM (tcp), identity,
                                                          policy, &error);
  g_assert_no_error (error);
  g_tls_connection_set_database (G_TLS_CONNECTION (connection), fixture->trust);
  pin_tls_client_connection_set_session_resumption_enabled (connection, TRUE);

  /* A TLS 1.3 server sends its tickets after the handshake: one echo
   * brings them in. */
  output = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  input = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  g_assert_true (g_output_stream_write_all (output, "x", 1, NULL, NULL, &error));
  g_assert_cmpint (g_input_stream_read (input, &byte, 1, NULL, &error), ==, 1);
  g_assert_no_error (error);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  test_server_wait (fixture->server);

  return test_server_was_resumed (fixture->server);
}

/* With resumption on, sessions are kept apart by what the policy's entry
 * enforces, not only by its pins: the same pins under a report-only entry
 * do not resume a session of an enforcing one. */
static void
test_resumption (Fixture      *fixture,
                 gconstpointer data)
{
  g_autoptr(PinTlsPolicy) report_only = pin_tls_policy_new ();
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", "leaf3.pem", NULL);
  g_autoptr(PinTlsPolicyEntry) entry = pin_tls_policy_entry_new ("host.test", pins, NULL);

  add_entry (fixture, "host.test", CA, "leaf1.pem", "leaf3.pem", NULL);
  pin_tls_policy_entry_set_report_only (entry, TRUE);
  g_assert_true (pin_tls_policy_add_entry (report_only, entry, NULL));

  g_assert_false (resumes (fixture, fixture->policy));
  g_assert_true (resumes (fixture, fixture->policy));
  g_assert_false (resumes (fixture, report_only));
  g_assert_true (resumes (fixture, report_only));

  /* Each resumed handshake was checked, and reported, like a full one. */
  g_assert_cmpuint (fixture->reports->len, ==, 2);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  test_resolve_test_names ();

#define ADD(path, server, func) \
  g_test_add (path, Fixture, server, fixture_setup, func, fixture_teardown)

  ADD ("/pintls/policy-connection/properties", &leaf1_server, test_properties);
  ADD ("/pintls/policy-connection/right-pins", &leaf1_server, test_right_pins);
  ADD ("/pintls/policy-connection/wrong-pins", &leaf2_server, test_wrong_pins);
  ADD ("/pintls/policy-connection/host-not-pinned", &leaf1_server, test_host_not_pinned);
  ADD ("/pintls/policy-connection/unpinned-ca-only", &leaf1_server, test_unpinned_ca_only);
  ADD ("/pintls/policy-connection/entry-mode", &self_server, test_entry_mode);
  ADD ("/pintls/policy-connection/report-only", &leaf2_server, test_report_only);
  ADD ("/pintls/policy-connection/expiry", &leaf2_server, test_expiry);
  ADD ("/pintls/policy-connection/expiry-falls-back", &leaf2_server, test_expiry_falls_back);
  ADD ("/pintls/policy-connection/spellings", &leaf2_server, test_spellings);
  ADD ("/pintls/policy-connection/pins-scoped-to-host", &leaf1_server,
       test_pins_scoped_to_host);
  ADD ("/pintls/policy-connection/proxy", &leaf2_server, test_proxy);
  ADD ("/pintls/policy-connection/connect-helper", &leaf1_server, test_connect_helper);
  ADD ("/pintls/policy-connection/connect-helper-async", NULL, test_connect_helper_async);
  ADD ("/pintls/policy-connection/resumption", &resuming_server, test_resumption);

  return g_test_run ();
}
