/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What the C test suites share: paths to the certificates in data/, and an
 * in-process GnuTLS server on a loopback port chosen at run time. */

#pragma once

#include <gio/gio.h>
#include <gnutls/gnutls.h>

#include "pin-tls-private.h"

G_BEGIN_DECLS

/* How long any wait on a test server may last before the test fails:
* 30 seconds, times PINTLS_TEST_TIMEOUT_SCALE if set (meson test
* --setup=valgrind sets it, as everything runs many times slower). */
#define TEST_TIMEOUT_SECONDS (test_timeout_seconds ())

guint test_timeout_seconds (void);

/* Path of a file in data/certs (or data/demo with "demo/cert1.pem"). */
char *test_data_path (const char *name);

/* The DER certificates of a PEM file in data/certs, in file order. */
GPtrArray *test_load_der_chain (const char *name);

/* The public-key pin (sha256/...) of the first certificate of a PEM file in
 * data/certs, computed by `certtool -i`, independently of pintls. */
char *test_certtool_pin (const char *name);

/* A pin set of the public keys of the first certificate of each file. */
PinTlsPinSet *test_pins_for (const char *first_name,
                             ...) G_GNUC_NULL_TERMINATED;

/* The TLS version the in-process servers are restricted to, from
 * PINTLS_TEST_TLS_VERSION: "1.2", "1.3", or NULL when it is unset. */
const char *test_tls_version (void);

/* The same restriction as a GnuTLS priority string ("NORMAL" when unset). */
const char *test_server_priority (void);

typedef enum
{
  TEST_SERVER_PAUSE_NONE,
  TEST_SERVER_PAUSE_BEFORE_HANDSHAKE,
  TEST_SERVER_PAUSE_AFTER_HANDSHAKE,
} TestServerPause;

typedef struct
{
  const char *chain;               /* PEM file in data/certs: the certificates served */
  const char *key;                 /* PEM file in data/certs: their key */
  const char *priority;            /* NULL: test_server_priority () */
  gboolean tickets;                /* offer session tickets */
  gboolean anonymous;              /* anonymous key exchange only, no certificate at
                                    * all: chain and key are ignored, and priority
                                    * must enable an ANON key exchange */
  const char *greeting;            /* sent right after the handshake, if not NULL */
  gboolean early_greeting;         /* TLS 1.3: send the greeting as soon as the
                                    * server's handshake flight is out, before the
                                    * client's Finished; once the client has hung
                                    * up, send it again, then read the client's
                                    * Finished or its alert. A server that fails
                                    * to write gives up without reading. */
  gboolean no_close_notify;        /* after the handshake and the greeting, shut
                                    * down the TCP connection's sending side without
                                    * a close_notify, and echo nothing */
  const char *alpn;                /* the one protocol the server selects through
                                    * ALPN when the client offers it, or NULL */
  gboolean no_tls;                 /* no TLS at all: send the greeting, if any, as
                                    * plain text, then wait for the client to close;
                                    * nothing of it is reported */
  gboolean session_cache;          /* keep the sessions of full handshakes, so that
                                    * a TLS 1.2 client can resume by session ID */
  gboolean concurrent;             /* serve every connection in a thread of its own,
                                    * as many at once as clients open */
  gboolean renegotiate;            /* after the handshake and the greeting, ask the
                                   * client to renegotiate: a HelloRequest in TLS
                                   * 1.2, a KeyUpdate asking for one back in 1.3 */
  const char *renegotiate_chain;   /* with renegotiate: what a renegotiating */
  const char *renegotiate_key;     /* client would be shown */
  const char *request_certificate; /* PEM file in data/certs: ask for a
                                    * client certificate from these
                                    * authorities, without requiring one */
  const char *http_body;           /* after the handshake, read one HTTP request and
                                    * answer it with this body, then close: an HTTPS
                                    * server, instead of echoing */
  TestServerPause pause;           /* where the server stops reading a connection,
                                    * until test_server_resume() or
                                    * test_server_reset(); a paused server echoes
                                    * nothing, so that the client need not read */
} TestServerOptions;

/* Waits for a connection on @listen_fd, a non-blocking listening socket,
 * and accepts it, until a byte arrives on @stop_fd: returns the new
 * socket, or -1 once stopped. Signals that interrupt the wait, and
 * connections that go away before they are accepted, are waited out. */
int test_accept_until_stopped (int listen_fd,
                               int stop_fd);

typedef struct _TestServer TestServer;

/* Starts a server thread accepting connections on 127.0.0.1, one at a
 * time unless options->concurrent. It runs a handshake and then echoes
 * whatever it reads until the client closes. Every read and write of the
 * server times out after TEST_TIMEOUT_SECONDS. */
TestServer *test_server_new (const TestServerOptions *options);

guint16 test_server_get_port (TestServer *server);

/* "127.0.0.1:PORT" */
const char *test_server_get_address (TestServer *server);

/* Waits until the server has finished with a connection that no earlier
 * call reported, then reports on it: call it once per connection made.
 * Fails the test after TEST_TIMEOUT_SECONDS. */
void test_server_wait (TestServer *server);

/* The same for @n connections at once; the reports are of the last one. */
void test_server_wait_n (TestServer *server,
                         guint       n);

/* How many connections so far completed a handshake. */
guint test_server_count_handshakes (TestServer *server);

/* The handshake result of the last connection: 0 or a GnuTLS error. */
int test_server_get_handshake_result (TestServer *server);

/* The fatal alert the client sent in the last connection, or -1. */
int test_server_get_alert (TestServer *server);

/* The application data the server received in the last connection. */
GBytes *test_server_get_received (TestServer *server);

/* Whether the last connection ended with the client's close_notify. */
gboolean test_server_got_close_notify (TestServer *server);

/* Whether a ClientHello arrived in the last connection. */
gboolean test_server_got_client_hello (TestServer *server);

/* The host name the client sent as SNI in the last connection, or NULL if
 * it sent none. */
char *test_server_get_server_name (TestServer *server);

/* The application bytes the server has received over all connections. */
gsize test_server_get_received_total (TestServer *server);

/* Whether the server resumed a session in the last connection. */
gboolean test_server_was_resumed (TestServer *server);

/* Whether the client of the last connection renegotiated. */
gboolean test_server_renegotiated (TestServer *server);

/* The server's channel binding data of @type in the last connection, or
 * NULL if GnuTLS had none. */
GBytes *test_server_get_channel_binding (TestServer              *server,
                                         gnutls_channel_binding_t type);

/* Lets a paused server go on with its connection: it first reads and drops
 * @skip plain bytes, then carries on. */
void test_server_resume (TestServer *server,
                         gsize       skip);
/* Makes a paused server reset its connection (SO_LINGER 0, then close),
 * without reading anything more. */
void test_server_reset (TestServer *server);
void test_server_free (TestServer *server);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestServer, test_server_free)

/* An independent server: a gnutls-serv process echoing on a loopback
 * port chosen free at run time. */
typedef struct _TestProcessServer TestProcessServer;

/* Starts `gnutls-serv --echo` with @chain and @key from data/certs and
 * @extra_args, once it accepts connections; NULL if gnutls-serv is not
 * installed. */
TestProcessServer *test_gnutls_serv_new (const char        *chain,
                                         const char        *key,
                                         const char *const *extra_args);

/* "127.0.0.1:PORT" */
const char *test_process_server_get_address (TestProcessServer *server);

void test_process_server_free (TestProcessServer *server);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestProcessServer, test_process_server_free)

/* Makes the default GResolver resolve every name in the "test" top-level
 * domain ("host.test", "xn--bcher-kva.test", with or without a trailing
 * dot) to 127.0.0.1, and nothing else, so that programs that connect by
 * name (libsoup, GSocketClient) reach the test servers without DNS. */
void test_resolve_test_names (void);

/* An HTTP proxy on 127.0.0.1 that answers every CONNECT request by relaying
 * the connection to 127.0.0.1:@target_port, whatever it asks for, and
 * refuses anything else. Each connection gets a thread of its own. */
typedef struct _TestProxy TestProxy;

TestProxy *test_proxy_new (guint16 target_port);

/* "http://127.0.0.1:PORT" */
const char *test_proxy_get_uri (TestProxy *proxy);

/* How many CONNECT requests the proxy has relayed so far. */
guint test_proxy_get_connects (TestProxy *proxy);

/* The target ("host:port") of the last CONNECT request, or NULL. */
char *test_proxy_get_last_target (TestProxy *proxy);

void test_proxy_free (TestProxy *proxy);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestProxy, test_proxy_free)

G_END_DECLS
