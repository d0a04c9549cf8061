/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Pin sets shared across threads: a pin set never changes once built, so
 * any number of threads may verify chains against it, print it, combine it
 * and make connections with it at the same time. Each test starts its
 * threads together, so that build-aux/tsan.sh sees them overlap, including
 * the first use of what pintls sets up once per process. */

#include "test-utils.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define N_THREADS 6
#define N_ROUNDS 50
#define N_CONNECTIONS 4

typedef struct
{
  GMutex lock;
  GCond cond;
  guint waiting;
  PinTlsPinSet *pins;
  TestServer *leaf1_server;
  TestServer *leaf2_server;
} Shared;

/* Lets every thread go once all of them are ready. */
static void
start_together (Shared *shared)
{
  g_mutex_lock (&shared->lock);
  if (++shared->waiting == N_THREADS)
    g_cond_broadcast (&shared->cond);
  while (shared->waiting < N_THREADS)
    g_cond_wait (&shared->cond, &shared->lock);
  g_mutex_unlock (&shared->lock);
}

static void
run_threads (Shared     *shared,
             GThreadFunc func)
{
  GThread *threads[N_THREADS];
  guint i;

  shared->waiting = 0;
  for (i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("pin-set-user", func, shared);
  for (i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);
}

static void
shared_init (Shared *shared)
{
  g_mutex_init (&shared->lock);
  g_cond_init (&shared->cond);
  shared->pins = test_pins_for ("leaf1.pem", "leaf3.pem", "intB.pem", NULL);
}

static void
shared_clear (Shared *shared)
{
  g_clear_object (&shared->pins);
  g_clear_pointer (&shared->leaf1_server, test_server_free);
  g_clear_pointer (&shared->leaf2_server, test_server_free);
  g_mutex_clear (&shared->lock);
  g_cond_clear (&shared->cond);
}

static gnutls_datum_t *
datums_for (GPtrArray *chain)
{
  gnutls_datum_t *datums = g_new0 (gnutls_datum_t, chain->len);
  guint i;

  for (i = 0; i < chain->len; i++)
    {
      gsize size;

      datums[i].data = (guchar *) g_bytes_get_data (g_ptr_array_index (chain, i), &size);
      datums[i].size = size;
    }

  return datums;
}

/* The verdict and the read-only calls ---------------------------------- */

static gpointer
verify_thread (gpointer data)
{
  Shared *shared = data;
  g_autoptr(GPtrArray) good = test_load_der_chain ("leaf1-chain.pem");
  g_autoptr(GPtrArray) bad = test_load_der_chain ("leaf2-chain.pem");
  g_autofree gnutls_datum_t *good_der = datums_for (good);
  g_autofree gnutls_datum_t *bad_der = datums_for (bad);
  g_autofree char *root = test_data_path ("rootA.pem");
  gnutls_x509_trust_list_t trust;
  guint i;

  gnutls_x509_trust_list_init (&trust, 0);
  g_assert_cmpint (
    gnutls_x509_trust_list_add_trust_file (trust, root, NULL, GNUTLS_X509_FMT_PEM, 0, 0), ==, 1);
  start_together (shared);

  for (i = 0; i < N_ROUNDS; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(PinTlsPinSet) both = NULL;
      g_auto(GStrv) strings = NULL;

      g_assert_true (pin_tls_verify_chain (shared->pins, good_der, good->len, PIN_TLS_MODE_PIN_ONLY,
                                           "host.test", NULL, &error));
      g_assert_no_error (error);
      g_assert_true (pin_tls_verify_chain (shared->pins, good_der, good->len,
                                           PIN_TLS_MODE_CA_AND_PINS, "host.test", trust, &error));
      g_assert_no_error (error);
      g_assert_false (pin_tls_verify_chain (shared->pins, bad_der, bad->len, PIN_TLS_MODE_PIN_ONLY,
                                            "host.test", NULL, &error));
      g_assert_error (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);

      g_assert_true (
        pin_tls_pin_set_matches_certificate (shared->pins, g_ptr_array_index (good, 0), NULL));
      strings = pin_tls_pin_set_to_strings (shared->pins);
      g_assert_cmpuint (g_strv_length (strings), ==, 3);
      both = pin_tls_pin_set_union (shared->pins, shared->pins);
      g_assert_true (pin_tls_pin_set_equal (both, shared->pins));
    }

  gnutls_x509_trust_list_deinit (trust, 1);
  return NULL;
}

static void
test_shared_verify (void)
{
  Shared shared = { 0 };

  shared_init (&shared);
  run_threads (&shared, verify_thread);
  shared_clear (&shared);
}

/* The system trust store, loaded once by whichever thread comes first. */
static gpointer
system_trust_thread (gpointer data)
{
  Shared *shared = data;
  g_autoptr(GPtrArray) chain = test_load_der_chain ("leaf1-chain.pem");
  g_autofree gnutls_datum_t *der = datums_for (chain);
  g_autoptr(GError) error = NULL;

  start_together (shared);

  /* The test hierarchy is in no system store. */
  g_assert_false (pin_tls_verify_chain (shared->pins, der, chain->len, PIN_TLS_MODE_CA_AND_PINS,
                                        "host.test", NULL, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);

  return NULL;
}

static void
test_shared_system_trust (void)
{
  Shared shared = { 0 };

  shared_init (&shared);
  run_threads (&shared, system_trust_thread);
  shared_clear (&shared);
}

/* Plain GnuTLS sessions ------------------------------------------------- */

static int
connect_fd (TestServer *server)
{
  struct sockaddr_in address = { 0 };
  struct timeval timeout = { TEST_TIMEOUT_SECONDS, 0 };
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  g_assert_cmpint (fd, >=, 0);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  address.sin_port = htons (test_server_get_port (server));
  g_assert_cmpint (connect (fd, (struct sockaddr *) &address, sizeof address), ==, 0);
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);

  return fd;
}

/* One handshake of a plain GnuTLS client with the shared pins: NULL when
 * it succeeded, or why not. */
static GError *
gnutls_handshake_with (TestServer                      *server,
                       PinTlsPinSet                    *pins,
                       gnutls_certificate_credentials_t credentials)
{
  gnutls_session_t session;
  GError *error = NULL;
  int fd = connect_fd (server);
  int ret;

  g_assert_cmpint (gnutls_init (&session, GNUTLS_CLIENT), ==, 0);
  gnutls_set_default_priority (session);
  gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, credentials);
  gnutls_transport_set_int (session, fd);
  g_assert_true (
    pin_tls_session_enforce_pins (session, pins, PIN_TLS_MODE_PIN_ONLY, "host.test", NULL));

  do
    ret = gnutls_handshake (session);
  while (ret < 0 && !gnutls_error_is_fatal (ret));

  if (ret < 0)
    error = pin_tls_session_handshake_error (session, ret);
  else
    gnutls_bye (session, GNUTLS_SHUT_WR);

  gnutls_deinit (session);
  close (fd);

  return error;
}

static gpointer
gnutls_thread (gpointer data)
{
  Shared *shared = data;
  gnutls_certificate_credentials_t credentials;
  guint i;

  gnutls_certificate_allocate_credentials (&credentials);
  start_together (shared);

  for (i = 0; i < N_CONNECTIONS; i++)
    {
      g_autoptr(GError) good =
        gnutls_handshake_with (shared->leaf1_server, shared->pins, credentials);
      g_autoptr(GError) bad =
        gnutls_handshake_with (shared->leaf2_server, shared->pins, credentials);

      g_assert_no_error (good);
      g_assert_error (bad, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
    }

  gnutls_certificate_free_credentials (credentials);
  return NULL;
}

static const TestServerOptions leaf1_server = { "leaf1-chain.pem", "leaf1.key" };
static const TestServerOptions leaf2_server = { "leaf2-chain.pem", "leaf2.key" };

static void
test_shared_gnutls_sessions (void)
{
  Shared shared = { 0 };

  shared_init (&shared);
  shared.leaf1_server = test_server_new (&leaf1_server);
  shared.leaf2_server = test_server_new (&leaf2_server);
  run_threads (&shared, gnutls_thread);
  shared_clear (&shared);
}

/* GIO connections ------------------------------------------------------- */

static GError *
connection_handshake_with (TestServer   *server,
                           PinTlsPinSet *pins)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) tcp = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(PinTlsClientConnection) connection = NULL;
  GError *error = NULL;

  g_socket_client_set_timeout (client, TEST_TIMEOUT_SECONDS);
  tcp = g_socket_client_connect_to_host (client, test_server_get_address (server), 0, NULL, &error);
  g_assert_no_error (error);
  identity = g_network_address_new ("host.test", test_server_get_port (server));
  connection = pin_tls_client_connection_new (G_IO_STREAM (tcp), identity, pins, &error);
  g_assert_no_error (error);

  if (g_tls_connection_handshake (G_TLS_CONNECTION (connection), NULL, &error))
    g_io_stream_close (G_IO_STREAM (connection), NULL, &error);

  return error;
}

static gpointer
connection_thread (gpointer data)
{
  Shared *shared = data;
  guint i;

  start_together (shared);

  for (i = 0; i < N_CONNECTIONS; i++)
    {
      g_autoptr(GError) good = connection_handshake_with (shared->leaf1_server, shared->pins);
      g_autoptr(GError) bad = connection_handshake_with (shared->leaf2_server, shared->pins);

      g_assert_no_error (good);
      g_assert_error (bad, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH);
    }

  return NULL;
}

static void
test_shared_connections (void)
{
  Shared shared = { 0 };

  shared_init (&shared);
  shared.leaf1_server = test_server_new (&leaf1_server);
  shared.leaf2_server = test_server_new (&leaf2_server);
  run_threads (&shared, connection_thread);
  shared_clear (&shared);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  /* The first connection of the process is made by all threads at once. */
  g_test_add_func ("/pintls/threads/shared-pin-set/connections", test_shared_connections);
  g_test_add_func ("/pintls/threads/shared-pin-set/gnutls-sessions", test_shared_gnutls_sessions);
  g_test_add_func ("/pintls/threads/shared-pin-set/verify", test_shared_verify);
  g_test_add_func ("/pintls/threads/shared-pin-set/system-trust", test_shared_system_trust);

  return g_test_run ();
}
