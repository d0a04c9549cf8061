/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pin_tls_session_enforce_pins() on a plain GnuTLS client session, over a
 * blocking socket, against the in-process test server. */

#include "test-utils.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TLS12 "NORMAL:-VERS-ALL:+VERS-TLS1.2"
#define TLS13 "NORMAL:-VERS-ALL:+VERS-TLS1.3"

/* A GnuTLS client as a plain GnuTLS program would write it. */
typedef struct
{
  int fd;
  gnutls_session_t session;
  gnutls_certificate_credentials_t credentials;
  gnutls_anon_client_credentials_t anon_credentials;
} TestClient;

static int
connect_to (TestServer *server)
{
  struct sockaddr_in address = { 0 };
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  g_assert_cmpint (fd, >=, 0);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  address.sin_port = htons (test_server_get_port (server));
  g_assert_cmpint (connect (fd, (struct sockaddr *) &address, sizeof address), ==, 0);

  return fd;
}

/* A client session for host.test; @ca_file (in data/certs), if given, is
 * the trust list of its certificate credentials. */
static TestClient *
test_client_new (TestServer *server,
                 const char *priority,
                 const char *ca_file)
{
  TestClient *client = g_new0 (TestClient, 1);

  gnutls_certificate_allocate_credentials (&client->credentials);
  if (ca_file != NULL)
    {
      g_autofree char *path = test_data_path (ca_file);

      g_assert_cmpint (gnutls_certificate_set_x509_trust_file (client->credentials, path,
                                                               GNUTLS_X509_FMT_PEM),
                       ==, 1);
    }

  g_assert_cmpint (gnutls_init (&client->session, GNUTLS_CLIENT), ==, 0);
  g_assert_cmpint (gnutls_priority_set_direct (client->session, priority, NULL), ==, 0);
  gnutls_credentials_set (client->session, GNUTLS_CRD_CERTIFICATE, client->credentials);
  gnutls_server_name_set (client->session, GNUTLS_NAME_DNS, "host.test", strlen ("host.test"));
  gnutls_handshake_set_timeout (client->session, TEST_TIMEOUT_SECONDS * 1000);

  client->fd = connect_to (server);
  gnutls_transport_set_int (client->session, client->fd);

  return client;
}

static void
test_client_free (TestClient *client)
{
  gnutls_deinit (client->session);
  gnutls_certificate_free_credentials (client->credentials);
  g_clear_pointer (&client->anon_credentials, gnutls_anon_free_client_credentials);
  close (client->fd);
  g_free (client);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestClient, test_client_free)

static void
test_client_enforce (TestClient   *client,
                     PinTlsPinSet *pins,
                     PinTlsMode    mode)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (pin_tls_session_enforce_pins (client->session, pins, mode, "host.test",
                                               &error));
  g_assert_no_error (error);
}

/* Runs the handshake as the pin_tls_session_enforce_pins() example does:
 * NULL on success, or the reason for the failure. */
static GError *
test_client_handshake (TestClient *client)
{
  int ret;

  do
    ret = gnutls_handshake (client->session);
  while (ret < 0 && !gnutls_error_is_fatal (ret));

  if (ret == 0)
    return NULL;

  return pin_tls_session_handshake_error (client->session, ret);
}

/* Sends @text, reads the echo back and says goodbye. */
static void
test_client_echo (TestClient *client,
                  const char *text)
{
  gsize length = strlen (text);
  char buffer[64];
  gsize received = 0;

  g_assert_cmpint (gnutls_record_send (client->session, text, length), ==, length);
  while (received < length)
    {
      ssize_t n = gnutls_record_recv (client->session, buffer + received,
                                      sizeof buffer - received);

      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        continue;
      g_assert_cmpint (n, >, 0);
      received += n;
    }
  g_assert_cmpmem (buffer, received, text, length);

  g_assert_cmpint (gnutls_bye (client->session, GNUTLS_SHUT_WR), ==, 0);
}

/* In a TLS 1.2 handshake decided after the server's Finished message, the
 * server completes its handshake before the alert arrives. */
static void
assert_server_refused (TestServer *server)
{
  g_autoptr(GBytes) received = NULL;

  test_server_wait (server);
  received = test_server_get_received (server);

  g_assert_cmpint (test_server_get_alert (server), ==, GNUTLS_A_BAD_CERTIFICATE);
  g_assert_cmpuint (g_bytes_get_size (received), ==, 0);
}

/* Refused in the verify function, before the client's Finished message. */
static void
assert_server_refused_early (TestServer *server)
{
  assert_server_refused (server);

  g_assert_cmpint (test_server_get_handshake_result (server), ==, GNUTLS_E_FATAL_ALERT_RECEIVED);
}

static void
assert_server_echoed (TestServer *server,
                      const char *text)
{
  g_autoptr(GBytes) received = NULL;

  test_server_wait (server);
  received = test_server_get_received (server);

  g_assert_cmpint (test_server_get_handshake_result (server), ==, 0);
  g_assert_cmpmem (g_bytes_get_data (received, NULL), g_bytes_get_size (received),
                   text, strlen (text));
  g_assert_true (test_server_got_close_notify (server));
}

static void
test_accept (gconstpointer data)
{
  const TestServerOptions options = { "leaf1-chain.pem", "leaf1.key", data };
  g_autoptr(TestServer) server = test_server_new (&options);
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(TestClient) client = test_client_new (server, "NORMAL", NULL);
  g_autoptr(GError) error = NULL;

  test_client_enforce (client, pins, PIN_TLS_MODE_PIN_ONLY);
  error = test_client_handshake (client);
  g_assert_no_error (error);

  test_client_echo (client, "ping");
  assert_server_echoed (server, "ping");
}

static void
test_mismatch (gconstpointer data)
{
  const TestServerOptions options = { "leaf2-chain.pem", "leaf2.key", data };
  g_autoptr(TestServer) server = test_server_new (&options);
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", "leafB.pem", NULL);
  g_autoptr(TestClient) client = test_client_new (server, "NORMAL", NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *leaf2_pin = test_certtool_pin ("leaf2.pem");
  g_autofree char *leafb_pin = test_certtool_pin ("leafB.pem");

  test_client_enforce (client, pins, PIN_TLS_MODE_PIN_ONLY);
  error = test_client_handshake (client);

  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_nonnull (strstr (error->message, leaf2_pin));
  g_assert_nonnull (strstr (error->message, leafb_pin));
  assert_server_refused_early (server);
}

static void
test_ca_and_pins_trusted (void)
{
  const TestServerOptions options = { "leaf1-chain.pem", "leaf1.key" };
  g_autoptr(TestServer) server = test_server_new (&options);
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(TestClient) client = test_client_new (server, "NORMAL", "rootA.pem");
  g_autoptr(GError) error = NULL;

  test_client_enforce (client, pins, PIN_TLS_MODE_CA_AND_PINS);
  error = test_client_handshake (client);
  g_assert_no_error (error);

  test_client_echo (client, "trusted");
  assert_server_echoed (server, "trusted");
}

static void
test_ca_and_pins_untrusted (void)
{
  const TestServerOptions options = { "leaf1-chain.pem", "leaf1.key" };
  g_autoptr(TestServer) server = test_server_new (&options);
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(TestClient) client = test_client_new (server, "NORMAL", NULL);
  g_autoptr(GError) error = NULL;

  test_client_enforce (client, pins, PIN_TLS_MODE_CA_AND_PINS);
  error = test_client_handshake (client);

  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  assert_server_refused_early (server);
}

static void
test_ca_and_pins_no_server_name (void)
{
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  gnutls_session_t session;
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (gnutls_init (&session, GNUTLS_CLIENT), ==, 0);

  g_assert_false (pin_tls_session_enforce_pins (session, pins, PIN_TLS_MODE_CA_AND_PINS,
                                                NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);

  gnutls_deinit (session);
}

/* A server that authenticates with no certificate at all (anonymous
 * key exchange, which only TLS 1.2 has) must be refused. */
static void
test_anonymous_server (void)
{
  const TestServerOptions options = {
    .priority = TLS12 ":-KX-ALL:+ANON-ECDH",
    .anonymous = TRUE,
  };
  g_autoptr(TestServer) server = test_server_new (&options);
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(TestClient) client = test_client_new (server, "NORMAL:+ANON-ECDH", NULL);
  g_autoptr(GError) error = NULL;

  gnutls_anon_allocate_client_credentials (&client->anon_credentials);
  gnutls_credentials_set (client->session, GNUTLS_CRD_ANON, client->anon_credentials);
  test_client_enforce (client, pins, PIN_TLS_MODE_PIN_ONLY);
  error = test_client_handshake (client);

  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_cmpint (gnutls_auth_get_type (client->session), ==, GNUTLS_CRD_ANON);
  assert_server_refused (server);
}

/* A caller who installs GnuTLS's own verification after pintls replaces
 * pintls's verify function; the check after the server's Finished message
 * must still refuse a CA-valid server whose pins do not match. */
static void
test_verify_function_replaced (gconstpointer data)
{
  const TestServerOptions options = { "leaf2-chain.pem", "leaf2.key", data };
  g_autoptr(TestServer) server = test_server_new (&options);
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(TestClient) client = test_client_new (server, "NORMAL", "rootA.pem");
  g_autoptr(GError) error = NULL;

  test_client_enforce (client, pins, PIN_TLS_MODE_PIN_ONLY);
  gnutls_session_set_verify_cert (client->session, "host.test", 0);
  error = test_client_handshake (client);

  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_cmpuint (gnutls_session_get_verify_cert_status (client->session), ==, 0);
  assert_server_refused (server);
}

/* Connects with @pins, resuming @session_data if given, and returns the
 * handshake's error. On success, echoes and stores the session's data for
 * the next connection in @session_data. */
static GError *
connect_resuming (TestServer     *server,
                  PinTlsPinSet   *pins,
                  gnutls_datum_t *session_data,
                  gboolean       *resumed)
{
  g_autoptr(TestClient) client = test_client_new (server, "NORMAL", NULL);
  GError *error;

  if (session_data->data != NULL)
    gnutls_session_set_data (client->session, session_data->data, session_data->size);
  g_clear_pointer (&session_data->data, gnutls_free);
  test_client_enforce (client, pins, PIN_TLS_MODE_PIN_ONLY);

  error = test_client_handshake (client);
  *resumed = gnutls_session_is_resumed (client->session);
  if (error != NULL)
    return error;

  /* A TLS 1.3 ticket arrives after the handshake, with the echo. */
  test_client_echo (client, "resume");
  g_assert_cmpint (gnutls_session_get_data2 (client->session, session_data), ==, 0);

  return NULL;
}

/* A TLS 1.2 session resumed with a pin set that no longer matches
 * the certificates of the original session is refused. */
static void
test_resumption_tls12 (void)
{
  const TestServerOptions options = { "leaf1-chain.pem", "leaf1.key", TLS12, TRUE };
  g_autoptr(TestServer) server = test_server_new (&options);
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  g_autoptr(PinTlsPinSet) revoked = test_pins_for ("leaf2.pem", NULL);
  gnutls_datum_t session_data = { NULL, 0 };
  g_autoptr(GError) error = NULL;
  gboolean resumed;

  error = connect_resuming (server, pins, &session_data, &resumed);
  g_assert_no_error (error);
  g_assert_false (resumed);
  assert_server_echoed (server, "resume");

  error = connect_resuming (server, pins, &session_data, &resumed);
  g_assert_no_error (error);
  g_assert_true (resumed);
  assert_server_echoed (server, "resume");

  error = connect_resuming (server, revoked, &session_data, &resumed);
  g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
  g_assert_true (resumed);
  assert_server_refused (server);
}

/* GnuTLS gives back the certificates of a resumed TLS 1.3 session only
 * after the handshake, too late for the glue: it refuses the session, even
 * with pins that match, and says why. */
static void
test_resumption_tls13 (void)
{
  const TestServerOptions options = { "leaf1-chain.pem", "leaf1.key", TLS13, TRUE };
  g_autoptr(TestServer) server = test_server_new (&options);
  g_autoptr(PinTlsPinSet) pins = test_pins_for ("leaf1.pem", NULL);
  gnutls_datum_t session_data = { NULL, 0 };
  g_autoptr(GError) error = NULL;
  gboolean resumed;

  error = connect_resuming (server, pins, &session_data, &resumed);
  g_assert_no_error (error);
  g_assert_false (resumed);
  assert_server_echoed (server, "resume");

  error = connect_resuming (server, pins, &session_data, &resumed);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC);
  g_assert_nonnull (strstr (error->message, "resumed TLS 1.3 session"));
  g_assert_true (resumed);
  assert_server_refused (server);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_data_func ("/pintls/gnutls/accept/tls12", TLS12, test_accept);
  g_test_add_data_func ("/pintls/gnutls/accept/tls13", TLS13, test_accept);
  g_test_add_data_func ("/pintls/gnutls/mismatch/tls12", TLS12, test_mismatch);
  g_test_add_data_func ("/pintls/gnutls/mismatch/tls13", TLS13, test_mismatch);
  g_test_add_func ("/pintls/gnutls/ca-and-pins/trusted", test_ca_and_pins_trusted);
  g_test_add_func ("/pintls/gnutls/ca-and-pins/untrusted", test_ca_and_pins_untrusted);
  g_test_add_func ("/pintls/gnutls/ca-and-pins/no-server-name",
                   test_ca_and_pins_no_server_name);
  g_test_add_func ("/pintls/gnutls/anonymous-server", test_anonymous_server);
  g_test_add_data_func ("/pintls/gnutls/verify-function-replaced/tls12", TLS12,
                        test_verify_function_replaced);
  g_test_add_data_func ("/pintls/gnutls/verify-function-replaced/tls13", TLS13,
                        test_verify_function_replaced);
  g_test_add_func ("/pintls/gnutls/resumption/tls12", test_resumption_tls12);
  g_test_add_func ("/pintls/gnutls/resumption/tls13", test_resumption_tls13);

  return g_test_run ();
}
