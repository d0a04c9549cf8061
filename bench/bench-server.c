/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pintls-bench-server: the one TLS server every benchmarked client talks
 * to. A single thread serves any number of connections at once over
 * non-blocking GnuTLS sessions, on one loopback port per certificate, TLS
 * 1.3 only and without session tickets, so every handshake is a full one.
 *
 * After the handshake a client may send one-line commands:
 *   "D\n"        the server answers with GnuTLS's description of the
 *                session (version, key exchange, signature, cipher)
 *   "B BYTES\n"  the server sends BYTES bytes of data
 *   "U BYTES\n"  the client sends BYTES bytes, the server answers "OK\n"
 * A client that sends nothing keeps an idle connection open.
 *
 * It prints "ports PORT..." on standard output once it listens, and exits
 * when its standard input closes, so it never outlives the benchmark. */

#define _GNU_SOURCE /* accept4 () */

#include <errno.h>
#include <gnutls/gnutls.h>
#include <glib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3"
#define RECORD_SIZE 16384
#define MAX_EVENTS 256
#define MAX_COMMAND_LENGTH 64

typedef enum
{
  PEER_HANDSHAKE,
  PEER_COMMAND,   /* waiting for a command, or for the client to close */
  PEER_SENDING,   /* sending the data a "B" command asked for */
  PEER_RECEIVING, /* reading the data an "U" command announced */
  PEER_REPLYING,  /* sending a short answer */
} PeerState;

typedef struct
{
  int fd;
  gnutls_session_t session;
  PeerState state;
  guint32 events;    /* what epoll waits for */
  char command[MAX_COMMAND_LENGTH];
  gsize command_length;
  guint64 remaining; /* bytes to send or to receive */
  char *reply;
  gsize reply_offset;
} Peer;

typedef struct
{
  int fd;
  gnutls_certificate_credentials_t credentials;
} Listener;

typedef struct
{
  int epoll_fd;
  gnutls_priority_t priority;
  GPtrArray *listeners; /* Listener */
  guint8 *data;         /* RECORD_SIZE bytes sent by "B" */
  guint8 *scratch;      /* RECORD_SIZE bytes to read into */
  guint64 failures;
} Server;

static void
die (const char *what,
     int         code)
{
  fprintf (stderr, "pintls-bench-server: %s: %s\n", what,
           code < 0 ? gnutls_strerror (code) : g_strerror (errno));
  exit (1);
}

static void
raise_file_limit (void)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
    {
      limit.rlim_cur = limit.rlim_max;
      setrlimit (RLIMIT_NOFILE, &limit);
    }
}

/* Reads a key file and the certificate files that follow it, given as
 * "KEY,CERT[,CERT...]": the leaf first, then its issuers. */
static gnutls_certificate_credentials_t
load_credentials (const char *spec)
{
  g_auto(GStrv) files = g_strsplit (spec, ",", -1);
  g_autoptr(GString) chain = g_string_new (NULL);
  g_autofree char *key = NULL;
  gnutls_certificate_credentials_t credentials;
  gnutls_datum_t chain_datum;
  gnutls_datum_t key_datum;
  gsize length;
  int ret;
  guint i;

  if (g_strv_length (files) < 2
      || !g_file_get_contents (files[0], &key, &length, NULL))
    die ("cannot read the key and certificates of --serve", 0);
  key_datum.data = (unsigned char *) key;
  key_datum.size = length;

  for (i = 1; files[i] != NULL; i++)
    {
      g_autofree char *pem = NULL;

      if (!g_file_get_contents (files[i], &pem, NULL, NULL))
        die (files[i], 0);
      g_string_append (chain, pem);
    }
  chain_datum.data = (unsigned char *) chain->str;
  chain_datum.size = chain->len;

  gnutls_certificate_allocate_credentials (&credentials);
  ret = gnutls_certificate_set_x509_key_mem2 (credentials, &chain_datum, &key_datum,
                                              GNUTLS_X509_FMT_PEM, NULL, 0);
  if (ret < 0)
    die (spec, ret);

  return credentials;
}

static void
watch (Server  *server,
       int      fd,
       guint32  events,
       gpointer data,
       int      op)
{
  struct epoll_event event = { 0 };

  event.events = events;
  event.data.ptr = data;
  if (epoll_ctl (server->epoll_fd, op, fd, &event) < 0)
    die ("epoll_ctl", 0);
}

static Listener *
listen_on_loopback (Server     *server,
                    const char *spec)
{
  Listener *listener = g_new0 (Listener, 1);
  struct sockaddr_in address = { 0 };
  socklen_t length = sizeof address;
  int one = 1;

  listener->credentials = load_credentials (spec);
  listener->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener->fd < 0)
    die ("socket", 0);
  setsockopt (listener->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);

  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (bind (listener->fd, (struct sockaddr *) &address, sizeof address) < 0
      || listen (listener->fd, 4096) < 0
      || getsockname (listener->fd, (struct sockaddr *) &address, &length) < 0)
    die ("listen", 0);

  watch (server, listener->fd, EPOLLIN, listener, EPOLL_CTL_ADD);
  g_ptr_array_add (server->listeners, listener);

  return listener;
}

static guint16
listener_port (Listener *listener)
{
  struct sockaddr_in address = { 0 };
  socklen_t length = sizeof address;

  getsockname (listener->fd, (struct sockaddr *) &address, &length);
  return ntohs (address.sin_port);
}

static void
peer_free (Peer *peer)
{
  gnutls_deinit (peer->session);
  close (peer->fd);
  g_free (peer->reply);
  g_free (peer);
}

static void
accept_peers (Server   *server,
              Listener *listener)
{
  int fd;
  int one = 1;

  while ((fd = accept4 (listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC))
         >= 0)
    {
      Peer *peer = g_new0 (Peer, 1);

      setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      peer->fd = fd;
      gnutls_init (&peer->session,
                   GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS);
      gnutls_priority_set (peer->session, server->priority);
      gnutls_credentials_set (peer->session, GNUTLS_CRD_CERTIFICATE,
                              listener->credentials);
      gnutls_transport_set_int (peer->session, fd);

      peer->state = PEER_HANDSHAKE;
      peer->events = EPOLLIN;
      watch (server, fd, peer->events, peer, EPOLL_CTL_ADD);
    }
}

/* What to wait for when GnuTLS would block. */
static guint32
blocked_direction (Peer *peer)
{
  return gnutls_record_get_direction (peer->session) ? EPOLLOUT : EPOLLIN;
}

static void
start_reply (Peer       *peer,
             const char *text)
{
  g_free (peer->reply);
  peer->reply = g_strdup (text);
  peer->reply_offset = 0;
  peer->state = PEER_REPLYING;
}

static gboolean
run_command (Peer *peer)
{
  const char *command = peer->command;
  guint64 bytes;

  if (g_str_equal (command, "D"))
    {
      char *description = gnutls_session_get_desc (peer->session);
      g_autofree char *line = g_strconcat (description, "\n", NULL);

      gnutls_free (description);
      start_reply (peer, line);
      return TRUE;
    }

  if ((command[0] != 'B' && command[0] != 'U') || command[1] != ' '
      || !g_ascii_string_to_unsigned (command + 2, 10, 1, G_MAXUINT64, &bytes, NULL))
    return FALSE;

  peer->remaining = bytes;
  peer->state = command[0] == 'B' ? PEER_SENDING : PEER_RECEIVING;

  return TRUE;
}

/* Takes the bytes of a command line from what was read; the rest, if a
 * whole line came, belongs to what the command announced. */
static gboolean
take_command_bytes (Peer         *peer,
                    const guint8 *data,
                    gsize         size,
                    gsize        *used)
{
  const guint8 *end = memchr (data, '\n', size);
  gsize length = end != NULL ? (gsize) (end - data) : size;

  if (peer->command_length + length >= MAX_COMMAND_LENGTH)
    return FALSE;

  memcpy (peer->command + peer->command_length, data, length);
  peer->command_length += length;
  *used = end != NULL ? length + 1 : length;
  if (end == NULL)
    return TRUE;

  peer->command[peer->command_length] = '\0';
  peer->command_length = 0;

  return run_command (peer);
}

/* Handles what one read brought: command bytes, then data. */
static gboolean
take_input (Peer         *peer,
            const guint8 *data,
            gsize         size)
{
  while (size > 0)
    {
      gsize used;

      if (peer->state == PEER_RECEIVING)
        {
          used = MIN (size, peer->remaining);
          peer->remaining -= used;
          if (peer->remaining == 0)
            start_reply (peer, "OK\n");
        }
      else if (peer->state != PEER_COMMAND
               || !take_command_bytes (peer, data, size, &used))
        {
          return FALSE;
        }

      data += used;
      size -= used;
    }

  return TRUE;
}

/* Sends what the current state wants sent. Returns the GnuTLS result of
 * the last send: 0 when the state moved on, an error otherwise. */
static int
send_some (Server *server,
           Peer   *peer)
{
  ssize_t sent;

  if (peer->state == PEER_REPLYING)
    {
      const char *text = peer->reply + peer->reply_offset;

      sent = gnutls_record_send (peer->session, text, strlen (text));
      if (sent < 0)
        return sent;
      peer->reply_offset += sent;
      if (peer->reply[peer->reply_offset] == '\0')
        peer->state = PEER_COMMAND;
      return 0;
    }

  sent = gnutls_record_send (peer->session, server->data,
                             MIN (peer->remaining, RECORD_SIZE));
  if (sent < 0)
    return sent;
  peer->remaining -= sent;
  if (peer->remaining == 0)
    peer->state = PEER_COMMAND;

  return 0;
}

/* Moves a connection on until GnuTLS would block. Returns the epoll events
 * to wait for, or 0 when the connection is over. */
static guint32
peer_step (Server *server,
           Peer   *peer)
{
  for (;;)
    {
      int ret;

      if (peer->state == PEER_HANDSHAKE)
        {
          ret = gnutls_handshake (peer->session);
          if (ret == 0)
            peer->state = PEER_COMMAND;
        }
      else if (peer->state == PEER_SENDING || peer->state == PEER_REPLYING)
        {
          ret = send_some (server, peer);
        }
      else
        {
          ret = gnutls_record_recv (peer->session, server->scratch, RECORD_SIZE);
          if (ret == 0)
            return 0;
          if (ret > 0 && !take_input (peer, server->scratch, ret))
            return 0;
        }

      if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
        return blocked_direction (peer);
      if (ret < 0 && gnutls_error_is_fatal (ret))
        {
          if (peer->state == PEER_HANDSHAKE)
            server->failures++;
          return 0;
        }
    }
}

static void
serve_peer (Server *server,
            Peer   *peer)
{
  guint32 events = peer_step (server, peer);

  if (events == 0)
    {
      peer_free (peer);
      return;
    }

  if (events != peer->events)
    {
      peer->events = events;
      watch (server, peer->fd, events, peer, EPOLL_CTL_MOD);
    }
}

static gboolean
is_listener (Server  *server,
             gpointer data)
{
  guint i;

  for (i = 0; i < server->listeners->len; i++)
    {
      if (server->listeners->pdata[i] == data)
        return TRUE;
    }

  return FALSE;
}

static void
run (Server *server)
{
  struct epoll_event events[MAX_EVENTS];

  for (;;)
    {
      int n = epoll_wait (server->epoll_fd, events, MAX_EVENTS, -1);
      int i;

      if (n < 0 && errno != EINTR)
        die ("epoll_wait", 0);

      for (i = 0; i < n; i++)
        {
          gpointer data = events[i].data.ptr;

          if (data == NULL)
            return;
          if (is_listener (server, data))
            accept_peers (server, data);
          else
            serve_peer (server, data);
        }
    }
}

int
main (int   argc,
      char *argv[])
{
  g_auto(GStrv) serve = NULL;
  GOptionEntry entries[] = {
    { "serve", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &serve,
      "Listen on a new port with this key and certificate chain",
      "KEY,CERT[,CERT…]" },
    { NULL },
  };
  g_autoptr(GOptionContext) context =
    g_option_context_new ("- the benchmarks' TLS server");
  g_autoptr(GError) error = NULL;
  Server server = { 0 };
  int ret;
  guint i;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || serve == NULL)
    {
      fprintf (stderr, "pintls-bench-server: %s\n",
               error != NULL ? error->message : "give at least one --serve");
      return 2;
    }

  raise_file_limit ();
  ret = gnutls_priority_init (&server.priority, PRIORITY, NULL);
  if (ret < 0)
    die ("priority", ret);
  server.epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
  server.listeners = g_ptr_array_new ();
  server.data = g_malloc0 (RECORD_SIZE);
  server.scratch = g_malloc (RECORD_SIZE);

  /* Standard input closing, with a NULL pointer, ends the server. */
  watch (&server, STDIN_FILENO, EPOLLIN, NULL, EPOLL_CTL_ADD);

  /* Every listener first: a failure ends the server before it says
   * anything. */
  for (i = 0; serve[i] != NULL; i++)
    listen_on_loopback (&server, serve[i]);

  printf ("ports");
  for (i = 0; i < server.listeners->len; i++)
    printf (" %u", listener_port (server.listeners->pdata[i]));
  printf ("\n");
  fflush (stdout);

  run (&server);

  if (server.failures > 0)
    fprintf (stderr,
             "pintls-bench-server: %" G_GUINT64_FORMAT " failed handshakes\n",
             server.failures);

  return 0;
}
