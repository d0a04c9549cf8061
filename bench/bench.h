/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What the parts of pintls-bench share: the clients it compares, the
 * server they connect to, and the measurements a child process makes. */

#pragma once

#include <gio/gio.h>
#include <gnutls/gnutls.h>
#include <pintls/pintls.h>

G_BEGIN_DECLS

/* How a client runs its connections. */
typedef enum
{
  BENCH_MODE_PLAIN, /* GnuTLS on a blocking socket, no GIO at all */
  BENCH_MODE_SYNC,  /* a GTlsConnection, blocking calls */
  BENCH_MODE_ASYNC, /* a GTlsConnection, asynchronous calls from a main loop */
} BenchMode;

/* One server, as every client sees it: its address and the pin of its leaf
 * certificate in the form each client needs. */
typedef struct
{
  guint16 port;
  GInetSocketAddress *address;  /* 127.0.0.1:port */
  GSocketConnectable *identity; /* localhost:port: SNI and host name */
  char *host_and_port;          /* "127.0.0.1:port", for pin_tls_connect() */
  guint8 spki_digest[32];       /* SHA-256 of the leaf's public key */
  PinTlsPinSet *pins;           /* the same, as a pintls pin */
  GTlsDatabase *database;       /* glib-networking: the leaf, as a file database */
  char *database_error;         /* why there is no database, if there is none */
  GSocketClient *socket_client; /* no proxy, same for every GIO client */
} BenchTarget;

typedef struct _BenchClient BenchClient;

/* Makes the TLS connection of a GIO client over a TCP connection. */
typedef GIOStream *(*BenchWrapFunc) (GIOStream   *tcp,
                                     BenchTarget *target,
                                     GError     **error);

struct _BenchClient
{
  const char *id;
  const char *label;
  BenchMode mode;
  gboolean glib_networking; /* needs glib-networking's GnuTLS backend */
  BenchWrapFunc wrap;       /* GIO clients; NULL for plain and the helper */
};

/* An open, handshaken connection of any client. */
typedef struct
{
  const BenchClient *client;
  GIOStream *stream;        /* GIO clients */
  int fd;                   /* plain clients */
  gnutls_session_t session; /* plain clients */
} BenchConnection;

typedef void (*BenchOpenedFunc) (BenchConnection *connection,
                                 GError          *error,
                                 gpointer         user_data);

/* bench-clients.c */
extern const BenchClient bench_clients[];
extern const guint bench_n_clients;

const BenchClient *bench_client_find (const char *id);
BenchTarget *bench_target_new (guint16     port,
                               const char *leaf_path,
                               GError    **error);
void bench_target_free (BenchTarget *target);
char *bench_client_unavailable (const BenchClient *client,
                                BenchTarget       *target);

BenchConnection *bench_connection_open (const BenchClient *client,
                                        BenchTarget       *target,
                                        GError           **error);
void bench_connection_open_async (const BenchClient *client,
                                  BenchTarget       *target,
                                  BenchOpenedFunc    callback,
                                  gpointer           user_data);
gboolean bench_connection_write_all (BenchConnection *connection,
                                     const void      *data,
                                     gsize            size,
                                     GError         **error);
gssize bench_connection_read (BenchConnection *connection,
                              void            *buffer,
                              gsize            size,
                              GError         **error);
void bench_connection_close (BenchConnection *connection);

/* bench-child.c: the measurements, one per child process. */
typedef struct
{
  char *test;
  char *client_id;
  guint16 port;
  char *leaf_path;
  double seconds; /* how long to measure each verdict case */
  guint connections;
} BenchChildOptions;

int bench_child_run (const BenchChildOptions *options);

/* bench-verdict.c */
int bench_verdict_run (double seconds_per_case);

/* bench-util.c */
void bench_raise_file_limit (void);
double bench_now (void);
double bench_cpu_seconds (void);
gsize bench_rss_kib (void);
gsize bench_peak_rss_kib (void);
gboolean bench_reset_peak_rss (void);
void bench_report (const char *key,
                   const char *format,
                   ...) G_GNUC_PRINTF (2, 3);
double bench_median (const double *values,
                     guint         n_values);

G_END_DECLS
