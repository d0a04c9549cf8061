/* SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * PinTlsClientConnection:
 *
 * A TLS client connection that completes only with a server that proves it
 * holds a pinned certificate or public key.
 *
 * `PinTlsClientConnection` is a [class@Gio.TlsConnection] implementing
 * [iface@Gio.TlsClientConnection], so anything that works on a GIO TLS
 * stream works on it: its input and output streams, `GDataInputStream`,
 * `g_io_stream_splice_async()`, asynchronous reads from a main loop. It runs
 * its own GnuTLS session over a pollable base stream, usually a
 * [class@Gio.SocketConnection], and enforces its [class@PinTls.PinSet] on
 * every handshake, or, given a [class@PinTls.Policy] instead
 * ([ctor@PinTls.ClientConnection.new_with_policy]), whatever the policy's
 * entry for the server asks.
 *
 * When the server presents no pinned certificate, the handshake fails with
 * %PIN_TLS_ERROR_PIN_MISMATCH, the server receives a fatal
 * `bad_certificate` alert, and no application data has been sent. The
 * error means the server moved to a certificate this client does not know:
 * the client is outdated and must be updated. Neither an
 * [signal@Gio.TlsConnection::accept-certificate] handler nor
 * [property@Gio.TlsClientConnection:validation-flags] can override a pin
 * mismatch; in %PIN_TLS_MODE_CA_AND_PINS mode they act only on certificate
 * authority errors, as for any GIO connection.
 *
 * ```c
 * const char *pin_strings[] = {
 *   "sha256/9sIXB7AFCxCp9agAXxemtPHN1m66/FkBo8xkhVRAKJY=", NULL
 * };
 * g_autoptr(GError) error = NULL;
 * g_autoptr(PinTlsPinSet) pins = pin_tls_pin_set_new (pin_strings, &error);
 * g_autoptr(GSocketClient) client = g_socket_client_new ();
 * g_autoptr(GSocketConnectable) address = g_network_address_new ("example.com", 443);
 * g_autoptr(GSocketConnection) tcp = NULL;
 * g_autoptr(PinTlsClientConnection) tls = NULL;
 *
 * if (pins != NULL)
 *   tcp = g_socket_client_connect (client, address, NULL, &error);
 * if (tcp != NULL)
 *   tls = pin_tls_client_connection_new (G_IO_STREAM (tcp), address, pins, &error);
 * if (tls != NULL && !g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error)
 *     && g_error_matches (error, PIN_TLS_ERROR, PIN_TLS_ERROR_PIN_MISMATCH))
 *   g_printerr ("This client is outdated: please update it.\n");
 * ```
 *
 * [func@PinTls.connect] and [func@PinTls.connect_async] do all of this in one
 * call.
 *
 * The first read or write runs the handshake if the application has not.
 * One thread may read while another writes. Session resumption is off
 * unless [property@PinTls.ClientConnection:session-resumption-enabled]
 * turns it on; a resumed session has its pins checked like a new one.
 *
 * The connection is set up in full when it is constructed, so one made
 * with g_object_new(), or with the plain constructor of a binding
 * (`PinTls.ClientConnection(base_io_stream=tcp, server_identity=address,
 * pins=pins)` in Python, `new PinTls.ClientConnection({...})` in
 * JavaScript), works like one from [ctor@PinTls.ClientConnection.new] and
 * enforces its pins the same way; [method@Gio.Initable.init] need not be
 * called. If the properties cannot make a connection (no pins and no
 * policy, both, no base stream, or a base stream that is not pollable),
 * nothing warns: [method@Gio.Initable.init] returns the error, every
 * handshake, read and write fails with it, closing succeeds, and the base
 * stream is left to the caller, open, without a byte sent over it.
 *
 * After a failed handshake, closing the connection first reads and drops
 * what the server had already sent, without waiting, and on a
 * [class@Gio.SocketConnection] shuts down the sending side of the socket:
 * closing a socket with unread data resets the connection, and a server
 * hit by the reset may never read the `bad_certificate` alert.
 */

#include "pin-tls-private.h"

#include <errno.h>

#include "pin-tls-enum-types.h"

typedef enum
{
  OP_HANDSHAKE,
  OP_READ,
  OP_WRITE,
  OP_CLOSE_READ,
  OP_CLOSE_WRITE,
  OP_CLOSE_BOTH,
} Operation;

/* What GnuTLS may do with the base stream during one call into it, and the
 * base stream's error if it stopped that call. Each thread has its own, so
 * a reader and a writer never share transport state. */
typedef struct
{
  gboolean blocking;
  GCancellable *cancellable;
  GError *error;
} IoContext;

static GPrivate current_io;

/* An asynchronous handshake, driven by sources on the context of the thread
 * that started it: the verify hook, accept-certificate and notifications
 * all run there. */
typedef struct
{
  PinTlsClientConnection *connection;
  GMainContext *context;
  GCancellable *cancellable;
  GThread *thread;          /* the thread that started it */
  GSource *source;          /* runs the next step */
  gboolean started;
  IoContext io;
} HandshakeJob;

struct _PinTlsClientConnection
{
  GTlsConnection parent_instance;

  /* Set up at construction, then fixed. */
  GError *construct_error;        /* why construction failed, or NULL */
  GIOStream *base_io_stream;
  GPollableInputStream *base_input;
  GPollableOutputStream *base_output;
  GInputStream *input;
  GOutputStream *output;
  gnutls_session_t session;
  PinTlsPinSet *pins;
  PinTlsPolicy *policy;           /* instead of pins: what applies to the host */

  /* Configuration, read when a handshake starts. */
  PinTlsMode mode;
  GSocketConnectable *server_identity;
  GTlsDatabase *database;
  gboolean database_is_set;
  gboolean use_system_certdb;
  GTlsInteraction *interaction;
  GTlsCertificate *certificate;
  gboolean require_close_notify;
  GTlsCertificateFlags validation_flags;
  char **advertised_protocols;
  gboolean resumption_enabled;
  char *server_name;
  PinTlsTrust *trust;
  PinTlsRule rule;                /* what the handshake enforces */

  /* What the handshake found; guarded by lock. */
  GPtrArray *peer_chain;          /* GBytes: the issuer path, leaf first */
  gboolean peer_chain_is_path;    /* or, if not, every certificate presented */
  GTlsCertificate *peer_certificate;
  GTlsCertificateFlags peer_certificate_errors;
  GPtrArray *presented_chain;     /* GBytes: every certificate, as sent */
  char **presented_pins;          /* made from it when first asked for */

  /* How a read that had already returned data would have ended; the next
   * read reports it. Guarded by lock. */
  gboolean read_ended;
  GError *read_end_error;         /* or NULL for the end of the stream */
  char *negotiated_protocol;
  GTlsProtocolVersion protocol_version;
  char *ciphersuite_name;
  GList *accepted_cas;            /* GByteArray */
  gboolean accepted_cas_changed;  /* since the last notification */
  gboolean session_resumed;

  /* Resumption; guarded by lock. */
  char *session_key;              /* what this handshake's sessions are filed under */
  GBytes *session_data;           /* the last session this connection saved */
  char *copied_session_key;       /* from copy_session_state(), to offer */
  GBytes *copied_session_data;

  /* Operations; guarded by lock. */
  GMutex lock;
  GCond cond;
  gboolean handshaking;
  GThread *handshake_thread;      /* inside gnutls_handshake() */
  HandshakeJob *handshake_job;
  GList *handshake_waiters;       /* GTask */
  gboolean handshake_done;
  GError *handshake_error;
  gboolean reading;
  gboolean writing;
  gboolean closing;
  gboolean read_closed;
  gboolean write_closed;
  gboolean base_closed;
  GIOCondition base_close_due;    /* a cancelled close left this to close */
  GCancellable *wake;             /* cancelled when waiting sources may go on */
  gboolean wake_used;
  GCancellable *read_closed_wake; /* cancelled when the input side closes */
  GCancellable *write_closed_wake;
};

enum
{
  PROP_0,
  PROP_PINS,
  PROP_MODE,
  PROP_PRESENTED_PINS,
  PROP_SESSION_RESUMPTION_ENABLED,
  PROP_SESSION_RESUMED,
  PROP_POLICY,
  N_OWN_PROPS,

  /* GTlsConnection */
  PROP_BASE_IO_STREAM = N_OWN_PROPS,
  PROP_REQUIRE_CLOSE_NOTIFY,
  PROP_REHANDSHAKE_MODE,
  PROP_USE_SYSTEM_CERTDB,
  PROP_DATABASE,
  PROP_INTERACTION,
  PROP_CERTIFICATE,
  PROP_PEER_CERTIFICATE,
  PROP_PEER_CERTIFICATE_ERRORS,
  PROP_ADVERTISED_PROTOCOLS,
  PROP_NEGOTIATED_PROTOCOL,
  PROP_PROTOCOL_VERSION,
  PROP_CIPHERSUITE_NAME,

  /* GTlsClientConnection */
  PROP_VALIDATION_FLAGS,
  PROP_SERVER_IDENTITY,
  PROP_USE_SSL3,
  PROP_ACCEPTED_CAS,
};

static GParamSpec *own_props[N_OWN_PROPS];

static void pin_tls_client_connection_initable_iface_init (GInitableIface *iface);
static void pin_tls_client_connection_client_iface_init (GTlsClientConnectionInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (PinTlsClientConnection, pin_tls_client_connection,
                               G_TYPE_TLS_CONNECTION,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE,
                                                      pin_tls_client_connection_initable_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_TLS_CLIENT_CONNECTION,
                                                      pin_tls_client_connection_client_iface_init))

#define CONNECTION_DEBUG(self, format, ...) \
  g_debug ("PinTlsClientConnection %p: " format, (self), ##__VA_ARGS__)

/* Transport ------------------------------------------------------------ */

/* GnuTLS's pull and push functions. Every failure of the base stream,
 * "would block" included, reaches GnuTLS as EINTR, so that GNUTLS_E_AGAIN
 * only ever means "GnuTLS handled a message of its own: call again", and
 * the caller reads the real cause from the thread's IoContext. */
static ssize_t
pull_cb (gnutls_transport_ptr_t transport,
         void                  *buffer,
         size_t                 size)
{
  PinTlsClientConnection *self = transport;
  IoContext *io = g_private_get (&current_io);
  gssize n;

  /* GCOVR_EXCL_START: GnuTLS pulls only inside the calls pintls makes with
   * the thread's IoContext set; this keeps any other from crashing. */
  if (io == NULL)
    {
      errno = EIO;
      return -1;
    }
  /* GCOVR_EXCL_STOP */

  g_clear_error (&io->error);
  n = g_pollable_stream_read (G_INPUT_STREAM (self->base_input), buffer, size,
                              io->blocking, io->cancellable, &io->error);
  if (n < 0)
    errno = EINTR;

  return n;
}

static ssize_t
vec_push_cb (gnutls_transport_ptr_t transport,
             const giovec_t        *iov,
             int                    iovcnt)
{
  PinTlsClientConnection *self = transport;
  IoContext *io = g_private_get (&current_io);
  g_autofree GOutputVector *vectors = g_new (GOutputVector, iovcnt);
  GPollableReturn result;
  gsize written = 0;
  int i;

  /* GCOVR_EXCL_START: as in pull_cb(), GnuTLS pushes only inside calls
   * made with the thread's IoContext set. */
  if (io == NULL)
    {
      errno = EIO;
      return -1;
    }
  /* GCOVR_EXCL_STOP */

  for (i = 0; i < iovcnt; i++)
    {
      vectors[i].buffer = iov[i].iov_base;
      vectors[i].size = iov[i].iov_len;
    }

  g_clear_error (&io->error);
  if (io->blocking)
    result = g_output_stream_writev (G_OUTPUT_STREAM (self->base_output),
                                     vectors, iovcnt, &written,
                                     io->cancellable, &io->error)
               ? G_POLLABLE_RETURN_OK : G_POLLABLE_RETURN_FAILED;
  else
    result = g_pollable_output_stream_writev_nonblocking (self->base_output,
                                                          vectors, iovcnt,
                                                          &written,
                                                          io->cancellable,
                                                          &io->error);

  if (result == G_POLLABLE_RETURN_WOULD_BLOCK)
    g_set_error_literal (&io->error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                         "Operation would block");
  if (result != G_POLLABLE_RETURN_OK)
    {
      errno = EINTR;
      return -1;
    }

  return written;
}

/* GnuTLS calls this only for timeouts, which pintls leaves to the base
 * stream. Saying data may be there makes GnuTLS go to pull_cb, which
 * waits or not as the current operation wants.
 *
 * GCOVR_EXCL_START: GnuTLS waits with it only for DTLS or a record
 * timeout, and this non-blocking TLS session has neither; it is set so
 * that GnuTLS never falls back to polling the transport pointer as if it
 * were a socket. */
static int
pull_timeout_cb (gnutls_transport_ptr_t transport,
                 unsigned int           milliseconds)
{
  return 1;
}
/* GCOVR_EXCL_STOP */

/* Reports how a GnuTLS call that returned @ret ended: TRUE when @ret is
 * not an error. Otherwise sets @error from the base stream's error, or from
 * GnuTLS. */
static gboolean
end_io (PinTlsClientConnection *self,
        int                     ret,
        IoContext              *io,
        gboolean                handshaking,
        GError                **error)
{
  if (ret >= 0)
    {
      g_clear_error (&io->error);
      return TRUE;
    }

  if (ret == GNUTLS_E_INTERRUPTED && io->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&io->error));
      return FALSE;
    }

  g_clear_error (&io->error);
  g_propagate_error (error, _pin_tls_error_from_gnutls (self->session, ret,
                                                        handshaking));
  return FALSE;
}

/* Operations ----------------------------------------------------------- */

static gboolean
op_is_closed (PinTlsClientConnection *self,
              Operation               op)
{
  switch (op)
    {
    case OP_READ:
      return self->read_closed;
    case OP_WRITE:
      return self->write_closed;
    case OP_HANDSHAKE:
      return self->read_closed || self->write_closed;
    default:
      return FALSE;
    }
}

static gboolean
op_must_wait (PinTlsClientConnection *self,
              Operation               op)
{
  if (self->handshaking || self->closing)
    return TRUE;

  switch (op)
    {
    case OP_READ:
      return self->reading;
    case OP_WRITE:
      return self->writing;
    case OP_HANDSHAKE:
      /* A handshake already done is only looked at: waiting for a read
       * could wait for ever for a write that waits for this claim. */
      return !self->handshake_done && (self->reading || self->writing);
    default:
      /* Closing sends close_notify, which is a write. */
      return self->writing;
    }
}

static void
mark_op (PinTlsClientConnection *self,
         Operation               op,
         gboolean                busy)
{
  switch (op)
    {
    case OP_HANDSHAKE:
      self->handshaking = busy;
      break;
    case OP_READ:
      self->reading = busy;
      break;
    case OP_WRITE:
      self->writing = busy;
      break;
    default:
      self->closing = busy;
      break;
    }
}

/* Whether this thread is the one the running handshake depends on: it is
 * inside the handshake, or it owns the main context the handshake runs on.
 * Waiting here for the handshake would wait forever. */
static gboolean
handshake_needs_this_thread (PinTlsClientConnection *self)
{
  if (self->handshake_thread == g_thread_self ())
    return TRUE;

  return self->handshake_job != NULL
         && g_main_context_is_owner (self->handshake_job->context);
}

static void
wake_waiters_cb (GCancellable *cancellable,
                 gpointer      data)
{
  PinTlsClientConnection *self = data;

  g_mutex_lock (&self->lock);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* Called with the lock held: why @op cannot start, or NULL if it can. */
static GError *
op_refusal (PinTlsClientConnection *self,
            Operation               op,
            GCancellable           *cancellable)
{
  GError *error = NULL;

  /* A handshake that can start checks its cancellable as it runs, so that
   * cancelling it fails the connection for good; a close that can start
   * closes even if cancelled, as GIO wants. */
  if ((op == OP_READ || op == OP_WRITE || op_must_wait (self, op))
      && g_cancellable_set_error_if_cancelled (cancellable, &error))
    return error;

  if (op_is_closed (self, op))
    return g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CLOSED,
                                "Connection is closed");

  if (self->handshake_error != NULL && op <= OP_WRITE)
    return g_error_copy (self->handshake_error);

  return NULL;
}

/* Claims @op, waiting for conflicting operations if @blocking. One read
 * and one write may run at once; a handshake or a close runs alone. After
 * a failed handshake every operation but close fails with its error. */
static gboolean
claim_op (PinTlsClientConnection *self,
          Operation               op,
          gboolean                blocking,
          GCancellable           *cancellable,
          GError                **error)
{
  GError *refusal = NULL;
  gulong cancel_id = 0;
  gboolean claimed = FALSE;

  g_mutex_lock (&self->lock);
  for (;;)
    {
      refusal = op_refusal (self, op, cancellable);
      if (refusal != NULL)
        break;

      if (!op_must_wait (self, op))
        {
          mark_op (self, op, TRUE);
          claimed = TRUE;
          break;
        }

      if (!blocking)
        {
          refusal = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                                         "Operation would block");
          break;
        }

      if (self->handshaking && handshake_needs_this_thread (self))
        {
          refusal = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED,
                                         "Cannot perform blocking operation "
                                         "during TLS handshake");
          break;
        }

      if (cancellable != NULL && cancel_id == 0)
        {
          g_mutex_unlock (&self->lock);
          cancel_id = g_cancellable_connect (cancellable,
                                             G_CALLBACK (wake_waiters_cb),
                                             self, NULL);
          g_mutex_lock (&self->lock);
          continue;
        }

      g_cond_wait (&self->cond, &self->lock);
    }
  g_mutex_unlock (&self->lock);

  if (cancel_id != 0)
    g_cancellable_disconnect (cancellable, cancel_id);

  if (refusal != NULL)
    g_propagate_error (error, refusal);

  return claimed;
}

static void wake_sources (PinTlsClientConnection *self);
static void close_base_when_due (PinTlsClientConnection *self);

static void
yield_op (PinTlsClientConnection *self,
          Operation               op)
{
  g_mutex_lock (&self->lock);
  mark_op (self, op, FALSE);
  g_cond_broadcast (&self->cond);
  wake_sources (self);
  g_mutex_unlock (&self->lock);

  close_base_when_due (self);
}

/* Verification --------------------------------------------------------- */

static PinTlsTrust *
create_trust (PinTlsClientConnection *self,
              GError                **error)
{
  gnutls_x509_trust_list_t system_list;

  if (self->database_is_set || !self->use_system_certdb)
    return _pin_tls_trust_new_for_database (self->database, self->interaction);

  system_list = _pin_tls_system_trust_list (error);
  if (system_list == NULL)
    return NULL; /* GCOVR_EXCL_LINE: only with an unreadable system trust store */

  return _pin_tls_trust_new_for_list (system_list);
}

/* Every certificate the server presented, as it sent them. */
static GPtrArray *
copy_presented_chain (PinTlsClientConnection *self)
{
  GPtrArray *chain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  const gnutls_datum_t *peers;
  unsigned int n_peers = 0;
  guint i;

  peers = gnutls_certificate_get_peers (self->session, &n_peers);
  for (i = 0; i < n_peers; i++)
    g_ptr_array_add (chain, g_bytes_new (peers[i].data, peers[i].size));

  return chain;
}

/* The issuer path the verdict checked, leaf first, out of @presented. When
 * the leaf alone decided, the verdict checked no issuer: every certificate
 * presented is kept instead, and the path is found if the peer certificate
 * is asked for, not in every handshake. */
static GPtrArray *
copy_peer_path (GPtrArray      *presented,
                PinTlsDecision *verdict)
{
  GPtrArray *chain;
  guint i;

  if (verdict->path_is_partial)
    return g_ptr_array_ref (presented);

  chain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (i = 0; i < verdict->path_length; i++)
    g_ptr_array_add (chain, g_bytes_ref (presented->pdata[verdict->path[i]]));

  return chain;
}

/* Called with the lock held: the public-key pins of the certificates the
 * server presented, made the first time someone asks for them and kept
 * until the next handshake. */
static char **
get_presented_pins (PinTlsClientConnection *self)
{
  g_autofree gnutls_datum_t *der = NULL;
  guint i;

  if (self->presented_pins != NULL || self->presented_chain == NULL)
    return self->presented_pins;

  der = g_new (gnutls_datum_t, self->presented_chain->len);
  for (i = 0; i < self->presented_chain->len; i++)
    {
      gsize size;

      der[i].data = (guchar *) g_bytes_get_data (self->presented_chain->pdata[i], &size);
      der[i].size = size;
    }
  self->presented_pins = _pin_tls_presented_pins (der, self->presented_chain->len);

  return self->presented_pins;
}

/* Called with the lock held: keeps, of the certificates presented, the
 * issuer path, each step checked by signature. */
static void
find_peer_path (PinTlsClientConnection *self)
{
  GPtrArray *path_chain = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autofree guint *path = NULL;
  guint length = 0;
  guint i;

  path = pin_tls_find_issuer_path ((GBytes *const *) self->peer_chain->pdata,
                                   self->peer_chain->len, &length, NULL);
  for (i = 0; path != NULL && i < length; i++)
    g_ptr_array_add (path_chain, g_bytes_ref (self->peer_chain->pdata[path[i]]));

  /* The verdict parsed them all, so this cannot fail; if it did, the
   * leaf alone is still the certificate that matched. */
  if (path_chain->len == 0)
    g_ptr_array_add (path_chain, g_bytes_ref (self->peer_chain->pdata[0])); /* GCOVR_EXCL_LINE */

  g_ptr_array_unref (self->peer_chain);
  self->peer_chain = path_chain;
  self->peer_chain_is_path = TRUE;
}

static GTlsCertificate *
get_peer_certificate (PinTlsClientConnection *self)
{
  g_autoptr(GError) error = NULL;

  if (self->peer_certificate == NULL && self->peer_chain != NULL
      && self->peer_chain->len > 0)
    {
      if (!self->peer_chain_is_path)
        find_peer_path (self);
      self->peer_certificate =
        _pin_tls_certificate_new_from_path (self->peer_chain, &error);
      if (self->peer_certificate == NULL)
        CONNECTION_DEBUG (self, "cannot represent the peer certificate: %s",
                          error->message);
    }

  return self->peer_certificate;
}

/* Runs inside the handshake once pintls has its verdict: records what the
 * server presented and lets accept-certificate accept certificate authority
 * errors, and only those. The emission happens on the thread running the
 * handshake, with no lock held. */
static gboolean
verdict_cb (PinTlsDecision *verdict,
            gpointer        user_data)
{
  PinTlsClientConnection *self = user_data;
  GTlsCertificateFlags errors = verdict->ca_errors;
  g_autoptr(GTlsCertificate) peer_certificate = NULL;

  if (!verdict->pin_matched)
    errors |= G_TLS_CERTIFICATE_GENERIC_ERROR;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->peer_chain, g_ptr_array_unref);
  g_clear_pointer (&self->presented_chain, g_ptr_array_unref);
  g_clear_pointer (&self->presented_pins, g_strfreev);
  g_clear_object (&self->peer_certificate);
  if (verdict->path != NULL)
    {
      self->presented_chain = copy_presented_chain (self);
      self->peer_chain = copy_peer_path (self->presented_chain, verdict);
    }
  self->peer_chain_is_path = !verdict->path_is_partial;
  self->peer_certificate_errors = errors;
  g_mutex_unlock (&self->lock);

  if (!verdict->pin_matched || verdict->ca_errors == 0)
    return FALSE;

  if ((verdict->ca_errors & self->validation_flags) == 0)
    return TRUE;

  g_mutex_lock (&self->lock);
  g_set_object (&peer_certificate, get_peer_certificate (self));
  g_mutex_unlock (&self->lock);

  return peer_certificate != NULL
         && g_tls_connection_emit_accept_certificate (G_TLS_CONNECTION (self),
                                                      peer_certificate,
                                                      verdict->ca_errors);
}

/* Handshake ------------------------------------------------------------ */

static int
retrieve_certificate_cb (gnutls_session_t             session,
                         const gnutls_datum_t        *req_ca_rdn,
                         int                          n_req_ca_rdn,
                         const gnutls_pk_algorithm_t *pk_algos,
                         int                          n_pk_algos,
                         gnutls_pcert_st            **pcert,
                         unsigned int                *pcert_length,
                         gnutls_privkey_t            *privkey)
{
  PinTlsClientConnection *self = gnutls_session_get_ptr (session);
  GList *accepted_cas = NULL;
  int i;

  for (i = 0; i < n_req_ca_rdn; i++)
    {
      GByteArray *dn = g_byte_array_new ();

      g_byte_array_append (dn, req_ca_rdn[i].data, req_ca_rdn[i].size);
      accepted_cas = g_list_prepend (accepted_cas, dn);
    }

  /* A connection has one handshake, renegotiation refused and TLS 1.3
   * post-handshake authentication not offered, so a server asks for a
   * certificate at most once: there is no earlier list to compare with. */
  accepted_cas = g_list_reverse (accepted_cas);
  g_mutex_lock (&self->lock);
  g_list_free_full (self->accepted_cas, (GDestroyNotify) g_byte_array_unref);
  self->accepted_cas = accepted_cas;
  self->accepted_cas_changed = accepted_cas != NULL;
  g_mutex_unlock (&self->lock);

  /* Client certificates are not supported: none is sent. */
  *pcert = NULL;
  *pcert_length = 0;
  *privkey = NULL;

  return 0;
}

/* Credentials are shared by every connection: the trust decision is
 * pintls's own, so they only carry the client-certificate callback. */
static gnutls_certificate_credentials_t
shared_credentials (void)
{
  static gnutls_certificate_credentials_t credentials;

  if (g_once_init_enter (&credentials))
    {
      gnutls_certificate_credentials_t created;

      gnutls_certificate_allocate_credentials (&created);
      gnutls_certificate_set_retrieve_function2 (created, retrieve_certificate_cb);
      g_once_init_leave (&credentials, created);
    }

  return credentials;
}

/* GnuTLS's default priorities, or the same without session tickets,
 * compiled once per process: compiling a priority string costs about 1%
 * of a handshake, and a session only takes a reference to the result. */
typedef struct
{
  gnutls_priority_t priority;
  int result;
} CompiledPriority;

static int
set_default_priority (gnutls_session_t session,
                      gboolean         without_tickets)
{
  static CompiledPriority compiled[2];
  static gsize initialized[2];
  CompiledPriority *chosen = &compiled[without_tickets ? 1 : 0];
  gsize *once = &initialized[without_tickets ? 1 : 0];

  if (g_once_init_enter (once))
    {
      if (without_tickets)
        chosen->result = gnutls_priority_init2 (&chosen->priority, "%NO_TICKETS",
                                                NULL, GNUTLS_PRIORITY_INIT_DEF_APPEND);
      else
        chosen->result = gnutls_priority_init (&chosen->priority, NULL, NULL);
      g_once_init_leave (once, 1);
    }

  /* GnuTLS compiles its own default priorities, with or without
   * "%NO_TICKETS", unless it is out of memory or the system's GnuTLS
   * configuration has an invalid default, which this process cannot
   * change once GnuTLS has read it. */
  if (chosen->result < 0)
    return chosen->result; /* GCOVR_EXCL_LINE */

  return gnutls_priority_set (session, chosen->priority);
}

static gboolean
set_alpn (PinTlsClientConnection *self,
          GError                **error)
{
  g_autofree gnutls_datum_t *protocols = NULL;
  guint n_protocols;
  guint i;
  int ret;

  if (self->advertised_protocols == NULL)
    return TRUE;

  n_protocols = g_strv_length (self->advertised_protocols);
  protocols = g_new (gnutls_datum_t, n_protocols);
  for (i = 0; i < n_protocols; i++)
    {
      protocols[i].data = (guchar *) self->advertised_protocols[i];
      protocols[i].size = strlen (self->advertised_protocols[i]);
    }

  ret = gnutls_alpn_set_protocols (self->session, protocols, n_protocols, 0);
  if (ret < 0)
    {
      g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC,
                   "Cannot advertise the application protocols: %s",
                   gnutls_strerror (ret));
      return FALSE;
    }

  return TRUE;
}

/* Resumption ----------------------------------------------------------- */

/* Resolves what this handshake enforces, the one place the pin check and
 * the session key get it from: the connection's pins in its mode, or what
 * its policy asks of the server. A host the policy refuses fails here,
 * before anything is sent. */
static gboolean
resolve_rule (PinTlsClientConnection *self,
              GError                **error)
{
  _pin_tls_rule_clear (&self->rule);
  if (self->policy != NULL)
    return _pin_tls_rule_init_for_policy (&self->rule, self->policy, self->server_name,
                                          error);

  _pin_tls_rule_init_for_pins (&self->rule, self->pins, self->mode);
  return TRUE;
}

/* Where CA_AND_PINS mode takes its authorities from. An explicit database
 * is told apart by its address only: one freed and another made at the
 * same address could share sessions, which the check of every resumed
 * session still refuses if the new one would not trust them. */
static char *
describe_trust_source (PinTlsClientConnection *self)
{
  if (!_pin_tls_rule_checks_ca (&self->rule))
    return g_strdup ("pins only");
  if (!self->database_is_set && self->use_system_certdb)
    return g_strdup ("system authorities");

  return g_strdup_printf ("database %p", (gpointer) self->database);
}

/* A digest of what this connection enforces (the rule's pins, mode and,
 * with a policy, the entry's settings; the authorities): everything a
 * session's key must tell apart besides the server. */
static void
compute_enforced_digest (PinTlsClientConnection *self,
                         guint8                 *digest)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *trust = describe_trust_source (self);
  gsize length = PIN_TLS_DIGEST_SIZE;

  g_checksum_update (checksum, self->rule.digest, PIN_TLS_DIGEST_SIZE);
  g_checksum_update (checksum, (const guchar *) trust, strlen (trust) + 1);
  g_checksum_get_digest (checksum, digest, &length);
}

static guint
identity_port (GSocketConnectable *identity)
{
  if (G_IS_NETWORK_ADDRESS (identity))
    return g_network_address_get_port (G_NETWORK_ADDRESS (identity));
  if (G_IS_INET_SOCKET_ADDRESS (identity))
    return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (identity));

  return 0;
}

/* Called with the lock held: the session copy_session_state() gave, if it
 * was saved under @key, or else one from the cache. Either way nothing is
 * left to offer a second time. */
static GBytes *
take_session (PinTlsClientConnection *self,
              const char             *key)
{
  GBytes *data = NULL;

  if (g_strcmp0 (self->copied_session_key, key) == 0)
    data = g_steal_pointer (&self->copied_session_data);
  g_clear_pointer (&self->copied_session_data, g_bytes_unref);
  g_clear_pointer (&self->copied_session_key, g_free);

  return data;
}

/* With resumption on, offers a saved session for this server and what
 * this connection enforces; with it off, asks for no tickets either. */
static gboolean
prepare_resumption (PinTlsClientConnection *self,
                    GError                **error)
{
  guint8 enforced[PIN_TLS_DIGEST_SIZE];
  g_autoptr(GBytes) data = NULL;
  gconstpointer bytes;
  char *key;
  gsize size;
  int ret;

  if (!self->resumption_enabled)
    {
      ret = set_default_priority (self->session, TRUE);
      /* GCOVR_EXCL_START: see set_default_priority() */
      if (ret < 0)
        g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC,
                     "Cannot turn session tickets off: %s", gnutls_strerror (ret));
      /* GCOVR_EXCL_STOP */
      return ret == 0;
    }

  compute_enforced_digest (self, enforced);
  key = _pin_tls_session_cache_key (self->server_name,
                                    identity_port (self->server_identity), enforced);

  g_mutex_lock (&self->lock);
  g_free (self->session_key);
  self->session_key = key;
  data = take_session (self, key);
  g_mutex_unlock (&self->lock);

  if (data == NULL)
    data = _pin_tls_session_cache_take (key);
  if (data == NULL)
    return TRUE;

  bytes = g_bytes_get_data (data, &size);
  ret = gnutls_session_set_data (self->session, bytes, size);
  CONNECTION_DEBUG (self, "offering a saved session%s%s",
                    ret < 0 ? ", which GnuTLS cannot use: " : "",
                    ret < 0 ? gnutls_strerror (ret) : "");

  return TRUE;
}

/* Saves the session for later connections, if this one completed its
 * handshake, pins checked, with resumption on. */
static void
save_session (PinTlsClientConnection *self)
{
  gnutls_datum_t datum = { NULL, 0 };
  g_autoptr(GBytes) data = NULL;
  g_autofree char *key = NULL;
  gboolean resumable;

  g_mutex_lock (&self->lock);
  resumable = self->resumption_enabled && self->handshake_done
              && self->handshake_error == NULL && self->session_key != NULL;
  g_mutex_unlock (&self->lock);

  if (!resumable || gnutls_session_get_data2 (self->session, &datum) < 0)
    return;
  data = g_bytes_new_with_free_func (datum.data, datum.size, gnutls_free, datum.data);

  g_mutex_lock (&self->lock);
  key = g_strdup (self->session_key);
  g_clear_pointer (&self->session_data, g_bytes_unref);
  self->session_data = g_bytes_ref (data);
  g_mutex_unlock (&self->lock);

  _pin_tls_session_cache_store (key, data);
  CONNECTION_DEBUG (self, "saved the session for resumption");
}

/* A TLS 1.3 server sends its tickets after the handshake: this runs in
 * the thread reading when one arrives. Under TLS 1.2, the session is
 * saved when the handshake completes. */
static void
ticket_cb (gpointer user_data)
{
  PinTlsClientConnection *self = user_data;

  if (gnutls_protocol_get_version (self->session) == GNUTLS_TLS1_3
      && (gnutls_session_get_flags (self->session) & GNUTLS_SFLAGS_SESSION_TICKET))
    save_session (self);
}

/* Handshake, continued ------------------------------------------------- */

/* Fixes what this handshake runs with: the server name, sent as SNI unless
 * it is an IP address, the trust, the pin check, resumption and ALPN. */
static gboolean
prepare_handshake (PinTlsClientConnection *self,
                   GError                **error)
{
  g_autofree char *identity_name = NULL;
  g_autofree char *rule = NULL;
  PinTlsSessionCheck *check;

  if (self->server_identity == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "A pinned connection needs the server identity");
      return FALSE;
    }

  identity_name = _pin_tls_identity_host_name (self->server_identity);
  g_clear_pointer (&self->server_name, g_free);
  self->server_name = _pin_tls_normalize_host_name (identity_name, error);
  if (self->server_name == NULL)
    return FALSE;

  if (!g_hostname_is_ip_address (self->server_name))
    gnutls_server_name_set (self->session, GNUTLS_NAME_DNS, self->server_name,
                            strlen (self->server_name));

  if (!resolve_rule (self, error))
    return FALSE;

  g_clear_pointer (&self->trust, _pin_tls_trust_free);
  if (_pin_tls_rule_checks_ca (&self->rule))
    {
      self->trust = create_trust (self, error);
      if (self->trust == NULL)
        return FALSE; /* GCOVR_EXCL_LINE: only with an unreadable system trust store */
    }

  check = _pin_tls_session_install (self->session, &self->rule, self->server_name,
                                    identity_port (self->server_identity), self->trust,
                                    TRUE, error);
  /* The name is normalised already, and GnuTLS fails to attach the check
   * to a session only when it is out of memory. */
  if (check == NULL)
    return FALSE; /* GCOVR_EXCL_LINE */
  _pin_tls_session_check_set_hook (check, verdict_cb, self);
  _pin_tls_session_check_set_ticket_hook (check, ticket_cb, self);

  rule = _pin_tls_rule_describe (&self->rule);
  CONNECTION_DEBUG (self, "handshake with “%s”, %s%s", self->server_name, rule,
                    self->resumption_enabled ? ", resumption on" : "");

  return prepare_resumption (self, error) && set_alpn (self, error);
}

static void
set_handshake_thread (PinTlsClientConnection *self,
                      GThread                *thread)
{
  g_mutex_lock (&self->lock);
  self->handshake_thread = thread;
  g_mutex_unlock (&self->lock);
}

/* Runs the handshake as far as the base stream lets it. Returns TRUE when
 * it completed and the pins were checked; on FALSE, a G_IO_ERROR_WOULD_BLOCK
 * error means "call again when the base stream is ready". */
static gboolean
run_handshake (PinTlsClientConnection *self,
               IoContext              *io,
               gboolean                first_step,
               GError                **error)
{
  gboolean checked = FALSE;
  int ret;

  if (first_step && (g_cancellable_set_error_if_cancelled (io->cancellable, error)
                     || !prepare_handshake (self, error)))
    return FALSE;

  /* A resumed session's certificates are checked here, still as part of
   * the handshake: accept-certificate may run, and the alert of a refusal
   * goes out through this operation's transport. */
  set_handshake_thread (self, g_thread_self ());
  g_private_set (&current_io, io);
  do
    ret = gnutls_handshake (self->session);
  while (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_WARNING_ALERT_RECEIVED);
  if (ret == 0)
    checked = _pin_tls_session_check_resumed (self->session, error);
  g_private_set (&current_io, NULL);
  set_handshake_thread (self, NULL);

  if (ret == 0)
    {
      g_clear_error (&io->error);
      return checked;
    }

  /* The pin check's own reason beats GnuTLS's generic one. */
  if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)
    {
      g_clear_error (&io->error);
      g_propagate_error (error, pin_tls_session_handshake_error (self->session, ret));
      return FALSE;
    }

  return end_io (self, ret, io, TRUE, error);
}

static GTlsProtocolVersion
protocol_version (gnutls_session_t session)
{
  switch (gnutls_protocol_get_version (session))
    {
    /* GCOVR_EXCL_START: no GnuTLS 3.7 client negotiates SSL 3.0 */
    case GNUTLS_SSL3:
      return G_TLS_PROTOCOL_VERSION_SSL_3_0;
    /* GCOVR_EXCL_STOP */
    case GNUTLS_TLS1_0:
      return G_TLS_PROTOCOL_VERSION_TLS_1_0;
    case GNUTLS_TLS1_1:
      return G_TLS_PROTOCOL_VERSION_TLS_1_1;
    case GNUTLS_TLS1_2:
      return G_TLS_PROTOCOL_VERSION_TLS_1_2;
    case GNUTLS_TLS1_3:
      return G_TLS_PROTOCOL_VERSION_TLS_1_3;
    /* GCOVR_EXCL_START: a completed TLS handshake has one of the versions above */
    default:
      return G_TLS_PROTOCOL_VERSION_UNKNOWN;
      /* GCOVR_EXCL_STOP */
    }
}

static char *
negotiated_protocol (gnutls_session_t session)
{
  gnutls_datum_t protocol = { NULL, 0 };

  if (gnutls_alpn_get_selected_protocol (session, &protocol) < 0)
    return NULL;

  return g_strndup ((const char *) protocol.data, protocol.size);
}

/* Called with the lock held: the asynchronous handshake waiting for its
 * next step on a main context that this thread started it on or is
 * iterating, with that context acquired; NULL if there is none. This
 * thread must not wait for such a handshake: while it blocks, nothing may
 * iterate the context that the handshake waits for. */
static HandshakeJob *
acquire_own_handshake (PinTlsClientConnection *self)
{
  HandshakeJob *job = self->handshake_job;

  if (job == NULL || self->handshake_thread != NULL)
    return NULL;
  if (job->thread != g_thread_self () && !g_main_context_is_owner (job->context))
    return NULL;

  return g_main_context_acquire (job->context) ? job : NULL;
}

/* Stops the job's next step; its context must be acquired. */
static void
job_cancel_step (HandshakeJob *job)
{
  job->started = TRUE;
  if (job->source != NULL)
    {
      g_source_destroy (job->source);
      g_clear_pointer (&job->source, g_source_unref);
    }
}

/* Which of the session's properties a handshake changed. */
typedef enum
{
  CHANGED_PROTOCOL_VERSION = 1 << 0,
  CHANGED_CIPHERSUITE_NAME = 1 << 1,
  CHANGED_NEGOTIATED_PROTOCOL = 1 << 2,
  CHANGED_ACCEPTED_CAS = 1 << 3,
  CHANGED_SESSION_RESUMED = 1 << 4,
} ChangedProperties;

/* Stores @value, which it takes, in @slot: whether that changed it. */
static gboolean
replace_string (char **slot,
                char  *value)
{
  gboolean changed = g_strcmp0 (*slot, value) != 0;

  g_free (*slot);
  *slot = value;

  return changed;
}

/* Called with the lock held after a successful handshake. */
static ChangedProperties
update_session_properties (PinTlsClientConnection *self)
{
  GTlsProtocolVersion version = protocol_version (self->session);
  ChangedProperties changed = 0;

  if (version != self->protocol_version)
    changed |= CHANGED_PROTOCOL_VERSION;
  self->protocol_version = version;

  if (replace_string (&self->ciphersuite_name,
                      g_strdup (gnutls_ciphersuite_get (self->session))))
    changed |= CHANGED_CIPHERSUITE_NAME;
  if (replace_string (&self->negotiated_protocol, negotiated_protocol (self->session)))
    changed |= CHANGED_NEGOTIATED_PROTOCOL;

  if (self->accepted_cas_changed)
    changed |= CHANGED_ACCEPTED_CAS;
  self->accepted_cas_changed = FALSE;

  return changed;
}

static void
notify_handshake_result (PinTlsClientConnection *self,
                         ChangedProperties       changed)
{
  GObject *object = G_OBJECT (self);

  g_object_freeze_notify (object);
  g_object_notify (object, "peer-certificate");
  g_object_notify (object, "peer-certificate-errors");
  g_object_notify_by_pspec (object, own_props[PROP_PRESENTED_PINS]);
  if (changed & CHANGED_PROTOCOL_VERSION)
    g_object_notify (object, "protocol-version");
  if (changed & CHANGED_CIPHERSUITE_NAME)
    g_object_notify (object, "ciphersuite-name");
  if (changed & CHANGED_NEGOTIATED_PROTOCOL)
    g_object_notify (object, "negotiated-protocol");
  if (changed & CHANGED_ACCEPTED_CAS)
    g_object_notify (object, "accepted-cas");
  if (changed & CHANGED_SESSION_RESUMED)
    g_object_notify_by_pspec (object, own_props[PROP_SESSION_RESUMED]);
  g_object_thaw_notify (object);
}

/* Ends a handshake, successful or not: records the result, wakes whatever
 * waits for it, then notifies and completes tasks, in that order, so an
 * application re-entering from a callback finds a consistent connection. */
static void
finish_handshake (PinTlsClientConnection *self,
                  GError                 *error)
{
  g_autoptr(GError) closed_error = NULL;
  ChangedProperties changed = 0;
  gboolean resumed = gnutls_session_is_resumed (self->session);
  HandshakeJob *job;
  GList *waiters;
  GList *l;

  g_mutex_lock (&self->lock);
  if (error != NULL && self->base_close_due != 0)
    error = closed_error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CLOSED,
                                                "Connection closed during the TLS "
                                                "handshake");
  if (error == NULL)
    {
      self->handshake_done = TRUE;
      changed = update_session_properties (self);
    }
  else
    {
      self->handshake_error = g_error_copy (error);
    }
  if (resumed != self->session_resumed)
    changed |= CHANGED_SESSION_RESUMED;
  self->session_resumed = resumed;
  self->handshaking = FALSE;
  job = g_steal_pointer (&self->handshake_job);
  waiters = g_steal_pointer (&self->handshake_waiters);
  g_cond_broadcast (&self->cond);
  wake_sources (self);
  g_mutex_unlock (&self->lock);

  CONNECTION_DEBUG (self, "handshake %s%s%s", error ? "failed: " : "done",
                    error ? error->message : "", resumed ? " (resumed)" : "");

  if (error == NULL && gnutls_protocol_get_version (self->session) != GNUTLS_TLS1_3)
    save_session (self);
  notify_handshake_result (self, changed);

  for (l = waiters; l != NULL; l = l->next)
    {
      if (error == NULL)
        g_task_return_boolean (l->data, TRUE);
      else
        g_task_return_error (l->data, g_error_copy (error));
    }
  g_list_free_full (waiters, g_object_unref);
  close_base_when_due (self);

  if (job != NULL)
    {
      g_clear_error (&job->io.error);
      g_clear_object (&job->cancellable);
      g_main_context_unref (job->context);
      g_free (job);
      g_object_unref (self);
    }
}

typedef enum
{
  HANDSHAKE_START,
  HANDSHAKE_CONTINUE,
  HANDSHAKE_DONE,
  HANDSHAKE_FAILED,
} HandshakeStart;

/* Claims the handshake unless it has already happened. An asynchronous
 * handshake of this thread's is taken over instead, to run to its end
 * here: @context is then set to its main context, acquired. */
static HandshakeStart
begin_handshake (PinTlsClientConnection *self,
                 GCancellable           *cancellable,
                 GMainContext          **context,
                 GError                **error)
{
  HandshakeJob *job;
  gboolean started;
  gboolean done;

  g_mutex_lock (&self->lock);
  done = self->handshake_done;
  job = done ? NULL : acquire_own_handshake (self);
  g_mutex_unlock (&self->lock);
  if (done)
    return HANDSHAKE_DONE;

  if (job != NULL)
    {
      started = job->started;
      job_cancel_step (job);
      *context = g_main_context_ref (job->context);
      CONNECTION_DEBUG (self, "a blocking operation takes over the handshake");
      return started ? HANDSHAKE_CONTINUE : HANDSHAKE_START;
    }

  if (!claim_op (self, OP_HANDSHAKE, TRUE, cancellable, error))
    return HANDSHAKE_FAILED;

  g_mutex_lock (&self->lock);
  done = self->handshake_done;
  g_mutex_unlock (&self->lock);

  /* Another thread did it while this one waited; those still waiting
   * must hear that the claim is given back. */
  if (done)
    {
      yield_op (self, OP_HANDSHAKE);
      return HANDSHAKE_DONE;
    }

  return HANDSHAKE_START;
}

static gboolean
pin_tls_client_connection_handshake (GTlsConnection *connection,
                                     GCancellable   *cancellable,
                                     GError        **error)
{
  PinTlsClientConnection *self = PIN_TLS_CLIENT_CONNECTION (connection);
  IoContext io = { TRUE, cancellable, NULL };
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GMainContext) context = NULL;
  HandshakeStart start;

  start = begin_handshake (self, cancellable, &context, error);
  if (start == HANDSHAKE_DONE)
    return TRUE;
  if (start == HANDSHAKE_FAILED)
    return FALSE;

  run_handshake (self, &io, start == HANDSHAKE_START, &local_error);
  g_clear_error (&io.error);
  finish_handshake (self, local_error);
  if (context != NULL)
    g_main_context_release (context);

  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  return TRUE;
}

static gboolean job_ready_cb (GObject *pollable,
                              gpointer data);

/* Attaches @source, which the job takes, to run the next step. */
static void
job_schedule (HandshakeJob *job,
              GSource      *source,
              GSourceFunc   step)
{
  g_source_set_callback (source, step, job, NULL);
  g_source_set_static_name (source, "[pintls] handshake");
  g_source_attach (source, job->context);
  job->source = source;
}

static gboolean
job_step_cb (gpointer data)
{
  HandshakeJob *job = data;
  PinTlsClientConnection *self = job->connection;
  g_autoptr(GError) error = NULL;
  gboolean first_step = !job->started;
  GSource *source;

  job->started = TRUE;
  g_clear_pointer (&job->source, g_source_unref);
  if (run_handshake (self, &job->io, first_step, &error))
    {
      finish_handshake (self, NULL);
      return G_SOURCE_REMOVE;
    }

  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      finish_handshake (self, error);
      return G_SOURCE_REMOVE;
    }

  if (gnutls_record_get_direction (self->session) == 0)
    source = g_pollable_input_stream_create_source (self->base_input,
                                                    job->cancellable);
  else
    source = g_pollable_output_stream_create_source (self->base_output,
                                                     job->cancellable);
  job_schedule (job, source, G_SOURCE_FUNC (job_ready_cb));

  return G_SOURCE_REMOVE;
}

static gboolean
job_ready_cb (GObject *pollable,
              gpointer data)
{
  return job_step_cb (data);
}

/* Starts an asynchronous handshake on this thread's main context, or joins
 * the one already running; @task, if given, completes when it ends.
 * Returns why no handshake can start, leaving @task to the caller. */
static GError *
start_handshake_async (PinTlsClientConnection *self,
                       GCancellable           *cancellable,
                       GTask                  *task)
{
  GError *error = NULL;
  HandshakeJob *job;

  g_mutex_lock (&self->lock);
  if (self->handshake_done || self->handshaking)
    {
      gboolean done = self->handshake_done;

      if (task != NULL && !done)
        self->handshake_waiters = g_list_append (self->handshake_waiters,
                                                 g_object_ref (task));
      g_mutex_unlock (&self->lock);

      if (task != NULL && done)
        g_task_return_boolean (task, TRUE);
      return NULL;
    }

  error = op_refusal (self, OP_HANDSHAKE, NULL);
  if (error == NULL && (self->reading || self->writing || self->closing))
    error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_BUSY,
                                 "Another operation is in progress");
  if (error != NULL)
    {
      g_mutex_unlock (&self->lock);
      return error;
    }

  job = g_new0 (HandshakeJob, 1);
  job->connection = g_object_ref (self);
  job->context = g_main_context_ref_thread_default ();
  job->thread = g_thread_self ();
  job->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  job->io.cancellable = job->cancellable;
  self->handshake_job = job;
  self->handshaking = TRUE;
  if (task != NULL)
    self->handshake_waiters = g_list_append (self->handshake_waiters,
                                             g_object_ref (task));
  g_mutex_unlock (&self->lock);

  job_schedule (job, g_idle_source_new (), job_step_cb);

  return NULL;
}

static void
pin_tls_client_connection_handshake_async (GTlsConnection     *connection,
                                           int                 io_priority,
                                           GCancellable       *cancellable,
                                           GAsyncReadyCallback callback,
                                           gpointer            user_data)
{
  PinTlsClientConnection *self = PIN_TLS_CLIENT_CONNECTION (connection);
  g_autoptr(GTask) task = NULL;
  GError *error;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, pin_tls_client_connection_handshake_async);
  g_task_set_priority (task, io_priority);
  /* The result is what happened to the connection: a cancellation that
   * came after the handshake ended changes neither. */
  g_task_set_check_cancellable (task, FALSE);

  error = start_handshake_async (self, cancellable, task);
  if (error != NULL)
    g_task_return_error (task, error);
}

static gboolean
pin_tls_client_connection_handshake_finish (GTlsConnection *connection,
                                            GAsyncResult   *result,
                                            GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, connection), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result,
                                                  pin_tls_client_connection_handshake_async),
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Makes sure a read or write happens after a completed handshake: runs it
 * now for a blocking operation, or starts it and reports "would block" for
 * a non-blocking one. */
static gboolean
ensure_handshake (PinTlsClientConnection *self,
                  gboolean                blocking,
                  GCancellable           *cancellable,
                  GError                **error)
{
  GError *refusal;
  gboolean needed;

  g_mutex_lock (&self->lock);
  needed = !self->handshake_done && self->handshake_error == NULL;
  g_mutex_unlock (&self->lock);

  if (!needed)
    return TRUE;

  if (blocking)
    return pin_tls_client_connection_handshake (G_TLS_CONNECTION (self),
                                                cancellable, error);

  refusal = start_handshake_async (self, cancellable, NULL);
  if (refusal != NULL)
    g_propagate_error (error, refusal);
  else
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                         "Operation would block");
  return FALSE;
}

/* Reading and writing -------------------------------------------------- */

/* One gnutls_record_recv() that returns data, the end of the stream or an
 * error. GNUTLS_E_AGAIN: GnuTLS consumed a message of its own, such as a
 * TLS 1.3 session ticket. A renegotiation request from a TLS 1.2 server is
 * ignored: pintls never accepts a second server certificate. */
static gssize
receive_record (PinTlsClientConnection *self,
                guint8                 *buffer,
                gsize                   count)
{
  gssize ret;

  do
    ret = gnutls_record_recv (self->session, buffer, count);
  while (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_WARNING_ALERT_RECEIVED
         || ret == GNUTLS_E_REHANDSHAKE);

  return ret;
}

/* Turns what gnutls_record_recv() returned into a read's result. */
static gssize
end_read (PinTlsClientConnection *self,
          gssize                  ret,
          IoContext              *io,
          GError                **error)
{
  if (ret == GNUTLS_E_PREMATURE_TERMINATION && !self->require_close_notify)
    {
      g_clear_error (&io->error);
      return 0;
    }
  if (!end_io (self, ret, io, FALSE, error))
    return -1;

  return ret;
}

/* Keeps how a read that returns data would have ended, for the next one. */
static void
keep_read_end (PinTlsClientConnection *self,
               GError                 *end_error)
{
  g_mutex_lock (&self->lock);
  self->read_ended = TRUE;
  self->read_end_error = end_error;
  g_mutex_unlock (&self->lock);
}

/* After a record that did not fill @buffer, takes the records that are
 * already there, without waiting, until @count bytes are in or the base
 * stream would block: GIO's asynchronous reads pay for every call, and a
 * record holds 16 KiB at most. How a read that stops for another reason
 * ends, end of stream or error, is kept for the next call, since this one
 * has data to return. */
static gssize
receive_records (PinTlsClientConnection *self,
                 IoContext              *io,
                 guint8                 *buffer,
                 gsize                   count)
{
  GError *end_error = NULL;
  gssize received = receive_record (self, buffer, count);
  gssize ret = 1;

  if (received <= 0)
    return received;

  /* Cancelling a read that has data stops nothing. */
  io->blocking = FALSE;
  io->cancellable = NULL;
  while ((gsize) received < count && ret > 0)
    {
      ret = receive_record (self, buffer + received, count - received);
      if (ret > 0)
        received += ret;
    }

  if (ret < 0 && g_error_matches (io->error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      g_clear_error (&io->error);
    }
  else if (ret <= 0)
    {
      end_read (self, ret, io, &end_error);
      keep_read_end (self, end_error);
    }

  return received;
}

/* Whether a read that returned data earlier found the end of the stream or
 * an error after it; if so, this read reports it in *@result. */
static gboolean
take_read_end (PinTlsClientConnection *self,
               gssize                 *result,
               GError                **error)
{
  GError *end_error;
  gboolean ended;

  g_mutex_lock (&self->lock);
  ended = self->read_ended;
  end_error = g_steal_pointer (&self->read_end_error);
  self->read_ended = FALSE;
  g_mutex_unlock (&self->lock);

  if (!ended)
    return FALSE;

  *result = end_error != NULL ? -1 : 0;
  if (end_error != NULL)
    g_propagate_error (error, end_error);

  return TRUE;
}

gssize
_pin_tls_client_connection_read (PinTlsClientConnection *self,
                                 void                   *buffer,
                                 gsize                   count,
                                 gboolean                blocking,
                                 GCancellable           *cancellable,
                                 GError                **error)
{
  IoContext io = { blocking, cancellable, NULL };
  gssize ret;

  if (!ensure_handshake (self, blocking, cancellable, error)
      || !claim_op (self, OP_READ, blocking, cancellable, error))
    return -1;

  if (take_read_end (self, &ret, error))
    {
      yield_op (self, OP_READ);
      return ret;
    }

  g_private_set (&current_io, &io);
  ret = receive_records (self, &io, buffer, count);
  g_private_set (&current_io, NULL);

  yield_op (self, OP_READ);

  return end_read (self, ret, &io, error);
}

/* Sends records until @count bytes are out or the base stream stops
 * taking them, so that a large write is one call and not one per record:
 * GIO's asynchronous writes pay for every call. Returns how many bytes
 * went out, or the GnuTLS error if none did; the error after a partial
 * write comes back at the next call. After "would block" GnuTLS keeps the
 * record it encrypted and sends it when called again; GIO callers retry
 * with the data that follows what was reported sent. */
static gssize
send_records (PinTlsClientConnection *self,
              const guint8           *data,
              gsize                   count)
{
  gsize sent = 0;

  while (sent < count)
    {
      gssize ret;

      do
        ret = gnutls_record_send (self->session, data + sent, count - sent);
      while (ret == GNUTLS_E_AGAIN);

      if (ret < 0)
        return sent > 0 ? (gssize) sent : ret;
      sent += ret;
    }

  return sent;
}

gssize
_pin_tls_client_connection_write (PinTlsClientConnection *self,
                                  const void             *buffer,
                                  gsize                   count,
                                  gboolean                blocking,
                                  GCancellable           *cancellable,
                                  GError                **error)
{
  IoContext io = { blocking, cancellable, NULL };
  gssize ret;

  if (!ensure_handshake (self, blocking, cancellable, error)
      || !claim_op (self, OP_WRITE, blocking, cancellable, error))
    return -1;

  g_private_set (&current_io, &io);
  ret = send_records (self, buffer, count);
  g_private_set (&current_io, NULL);

  yield_op (self, OP_WRITE);

  if (!end_io (self, ret, &io, FALSE, error))
    return -1;

  return ret;
}

/* Pollable sources ----------------------------------------------------- */

/* A source for the connection's streams. It waits on the base stream while
 * I/O can proceed and, while a handshake or a conflicting operation runs,
 * on the connection's wake cancellable, cancelled when such an operation
 * ends. It is ready at once when GnuTLS holds decrypted data that polling
 * the base stream cannot show, and when its side of the connection closes
 * (from another thread, or from a callback), which the base stream would
 * never report. */
typedef struct
{
  GSource source;
  PinTlsClientConnection *connection;
  GObject *stream;
  GIOCondition condition;
  GSource *base_source;
  GCancellable *wake;
  GSource *wake_source;
} ConnectionSource;

/* The callback of child sources, pollable or cancellable: the parent does
 * the work. */
static gboolean
dummy_source_cb (gpointer object,
                 gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/* Called with the lock held: whether an operation in @condition's direction
 * would return at once without touching the base stream, or must wait for
 * the connection to wake it. */
static gboolean
ready_without_base (PinTlsClientConnection *self,
                    GIOCondition            condition,
                    gboolean               *wait_for_wake)
{
  gboolean in = (condition & G_IO_IN) != 0;

  *wait_for_wake = FALSE;

  if (self->handshake_error != NULL || (in ? self->read_closed : self->write_closed))
    return TRUE;
  if (!self->handshake_done && !self->handshaking)
    return TRUE;

  if (self->handshaking || self->closing || (in ? self->reading : self->writing))
    {
      *wait_for_wake = TRUE;
      return FALSE;
    }

  return in && (self->read_ended || gnutls_record_check_pending (self->session) > 0);
}

/* Called with the lock held. */
static void
wake_sources (PinTlsClientConnection *self)
{
  if (!self->wake_used)
    return;

  g_cancellable_cancel (self->wake);
  g_object_unref (self->wake);
  self->wake = g_cancellable_new ();
  self->wake_used = FALSE;
}

static void
set_child_source (ConnectionSource *source,
                  GSource         **slot,
                  GSource          *child)
{
  if (*slot != NULL)
    {
      g_source_remove_child_source (&source->source, *slot);
      g_clear_pointer (slot, g_source_unref);
    }

  if (child != NULL)
    {
      g_source_set_callback (child, G_SOURCE_FUNC (dummy_source_cb), NULL, NULL);
      g_source_add_child_source (&source->source, child);
      *slot = child;
    }
}

static void
connection_source_sync (ConnectionSource *source)
{
  PinTlsClientConnection *self = source->connection;
  g_autoptr(GCancellable) wake = NULL;
  gboolean wait_for_wake;
  gboolean ready;

  g_mutex_lock (&self->lock);
  ready = ready_without_base (self, source->condition, &wait_for_wake);
  if (wait_for_wake)
    {
      wake = g_object_ref (self->wake);
      self->wake_used = TRUE;
    }
  g_mutex_unlock (&self->lock);

  g_source_set_ready_time (&source->source, ready ? 0 : -1);

  if (wake != source->wake)
    {
      g_set_object (&source->wake, wake);
      set_child_source (source, &source->wake_source,
                        wake ? g_cancellable_source_new (wake) : NULL);
    }

  if (ready || wait_for_wake)
    set_child_source (source, &source->base_source, NULL);
  else if (source->base_source == NULL && (source->condition & G_IO_IN))
    set_child_source (source, &source->base_source,
                      g_pollable_input_stream_create_source (self->base_input, NULL));
  else if (source->base_source == NULL)
    set_child_source (source, &source->base_source,
                      g_pollable_output_stream_create_source (self->base_output, NULL));
}

static gboolean
connection_source_dispatch (GSource    *gsource,
                            GSourceFunc callback,
                            gpointer    user_data)
{
  ConnectionSource *source = (ConnectionSource *) gsource;
  GPollableSourceFunc func = (GPollableSourceFunc) (GCallback) callback;
  gboolean again;

  again = func (source->stream, user_data);
  if (again)
    connection_source_sync (source);

  return again;
}

static void
connection_source_finalize (GSource *gsource)
{
  ConnectionSource *source = (ConnectionSource *) gsource;

  g_clear_pointer (&source->base_source, g_source_unref);
  g_clear_pointer (&source->wake_source, g_source_unref);
  g_clear_object (&source->wake);
  g_clear_object (&source->stream);
  g_clear_object (&source->connection);
}

static gboolean
connection_source_closure_callback (GObject *stream,
                                    gpointer data)
{
  GClosure *closure = data;
  GValue param = G_VALUE_INIT;
  GValue result_value = G_VALUE_INIT;
  gboolean result;

  g_value_init (&result_value, G_TYPE_BOOLEAN);
  g_value_init (&param, G_TYPE_OBJECT);
  g_value_set_object (&param, stream);

  g_closure_invoke (closure, &result_value, 1, &param, NULL);

  result = g_value_get_boolean (&result_value);
  g_value_unset (&result_value);
  g_value_unset (&param);

  return result;
}

static GSourceFuncs connection_source_funcs = {
  NULL,
  NULL,
  connection_source_dispatch,
  connection_source_finalize,
  G_SOURCE_FUNC (connection_source_closure_callback),
  NULL,
};

static void
add_cancellable_child (GSource      *source,
                       GCancellable *cancellable)
{
  GSource *child;

  if (cancellable == NULL)
    return;

  child = g_cancellable_source_new (cancellable);
  g_source_set_callback (child, G_SOURCE_FUNC (dummy_source_cb), NULL, NULL);
  g_source_add_child_source (source, child);
  g_source_unref (child);
}

GSource *
_pin_tls_client_connection_create_source (PinTlsClientConnection *self,
                                          GIOCondition            condition,
                                          GCancellable           *cancellable)
{
  ConnectionSource *source;

  source = (ConnectionSource *) g_source_new (&connection_source_funcs,
                                              sizeof (ConnectionSource));
  g_source_set_static_name (&source->source, "[pintls] connection");
  source->connection = g_object_ref (self);
  source->condition = condition;
  source->stream = g_object_ref (condition & G_IO_IN ? G_OBJECT (self->input)
                                                     : G_OBJECT (self->output));

  add_cancellable_child (&source->source, cancellable);
  add_cancellable_child (&source->source, condition & G_IO_IN ? self->read_closed_wake
                                                              : self->write_closed_wake);
  connection_source_sync (source);

  return &source->source;
}

gboolean
_pin_tls_client_connection_check (PinTlsClientConnection *self,
                                  GIOCondition            condition)
{
  gboolean wait_for_wake;
  gboolean ready;

  g_mutex_lock (&self->lock);
  ready = ready_without_base (self, condition, &wait_for_wake);
  if (!ready && !wait_for_wake)
    {
      if (condition & G_IO_IN)
        ready = g_pollable_input_stream_is_readable (self->base_input);
      else
        ready = g_pollable_output_stream_is_writable (self->base_output);
    }
  g_mutex_unlock (&self->lock);

  return ready;
}

/* Closing -------------------------------------------------------------- */

/* An asynchronous handshake of this thread's would never finish while
 * this thread waits for it, so closing ends it instead. */
static void
stop_own_handshake (PinTlsClientConnection *self)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainContext) context = NULL;
  HandshakeJob *job;

  g_mutex_lock (&self->lock);
  job = acquire_own_handshake (self);
  g_mutex_unlock (&self->lock);

  if (job == NULL)
    return;

  context = g_main_context_ref (job->context);
  job_cancel_step (job);

  error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CLOSED,
                               "Connection closed during the TLS handshake");
  finish_handshake (self, error);
  g_main_context_release (context);
}

/* Sends close_notify; without @io->blocking, a G_IO_ERROR_WOULD_BLOCK
 * error means "call again once the base stream is writable". */
static gboolean
send_close_notify (PinTlsClientConnection *self,
                   IoContext              *io,
                   GError                **error)
{
  int ret;

  g_private_set (&current_io, io);
  do
    ret = gnutls_bye (self->session, GNUTLS_SHUT_WR);
  while (ret == GNUTLS_E_AGAIN);
  g_private_set (&current_io, NULL);

  return end_io (self, ret, io, FALSE, error);
}

static Operation
close_op (GIOCondition side)
{
  if (side == G_IO_IN)
    return OP_CLOSE_READ;
  if (side == G_IO_OUT)
    return OP_CLOSE_WRITE;

  return OP_CLOSE_BOTH;
}

/* Called with @op claimed: whether closing it sends close_notify. */
static gboolean
close_needs_bye (PinTlsClientConnection *self,
                 GIOCondition            side)
{
  gboolean needed;

  g_mutex_lock (&self->lock);
  needed = (side & G_IO_OUT) && self->handshake_done && !self->write_closed;
  g_mutex_unlock (&self->lock);

  return needed;
}

/* Called with @side claimed: whether the base stream is about to close
 * after a handshake that failed, when the server may still be sending. */
static gboolean
close_needs_drain (PinTlsClientConnection *self,
                   GIOCondition            side)
{
  gboolean needed;

  g_mutex_lock (&self->lock);
  needed = side == (G_IO_IN | G_IO_OUT) && self->handshake_error != NULL
           && !self->read_closed;
  g_mutex_unlock (&self->lock);

  return needed;
}

/* How much of what a refused server sent drain_input() reads at most. */
#define DRAIN_LIMIT (256 * 1024)
#define DRAIN_CHUNK (16 * 1024)

/* After a failed handshake the server may have sent more than the client
 * read: a TLS 1.3 server's session tickets, or data it sends before the
 * client's Finished. Closing a socket with unread data makes the kernel
 * reset the connection, and a server that writes after the reset fails
 * without ever reading the alert that said why. So this shuts the socket's
 * sending side, which sends the alert on its way followed by the end of
 * the stream, then reads and drops what has already arrived, without
 * waiting and up to DRAIN_LIMIT bytes. */
static void
drain_input (PinTlsClientConnection *self)
{
  g_autofree guint8 *buffer = g_malloc (DRAIN_CHUNK);
  gsize drained = 0;
  gssize n;

  if (G_IS_SOCKET_CONNECTION (self->base_io_stream))
    {
      GSocket *socket;

      socket = g_socket_connection_get_socket (G_SOCKET_CONNECTION (self->base_io_stream));
      g_socket_shutdown (socket, FALSE, TRUE, NULL);
    }

  do
    n = g_pollable_input_stream_read_nonblocking (self->base_input, buffer, DRAIN_CHUNK,
                                                  NULL, NULL);
  while (n > 0 && (drained += n) < DRAIN_LIMIT);

  CONNECTION_DEBUG (self, "dropped %" G_GSIZE_FORMAT " unread bytes before closing",
                    drained);
}

static void
mark_closed (PinTlsClientConnection *self,
             GIOCondition            side)
{
  g_mutex_lock (&self->lock);
  self->read_closed |= (side & G_IO_IN) != 0;
  self->write_closed |= (side & G_IO_OUT) != 0;
  self->base_closed |= side == (G_IO_IN | G_IO_OUT);
  g_mutex_unlock (&self->lock);

  /* Sources waiting on the base stream will not hear from it again. */
  if (side & G_IO_IN)
    g_cancellable_cancel (self->read_closed_wake);
  if (side & G_IO_OUT)
    g_cancellable_cancel (self->write_closed_wake);

  yield_op (self, close_op (side));
}

static gboolean
close_base (PinTlsClientConnection *self,
            GIOCondition            side,
            GCancellable           *cancellable,
            GError                **error)
{
  if (side == (G_IO_IN | G_IO_OUT))
    return g_io_stream_close (self->base_io_stream, cancellable, error);
  if (side == G_IO_IN)
    return g_input_stream_close (G_INPUT_STREAM (self->base_input), cancellable, error);

  return g_output_stream_close (G_OUTPUT_STREAM (self->base_output), cancellable, error);
}

/* Closes the base stream for the sides a cancelled close gave up on, once
 * no operation uses the session any more. */
static void
close_base_when_due (PinTlsClientConnection *self)
{
  GIOCondition side;

  g_mutex_lock (&self->lock);
  side = self->base_close_due;
  if (side != 0 && !op_must_wait (self, close_op (side)))
    {
      self->base_close_due = 0;
      mark_op (self, close_op (side), TRUE);
    }
  else
    {
      side = 0;
    }
  g_mutex_unlock (&self->lock);

  if (side == 0)
    return;

  CONNECTION_DEBUG (self, "closing the base stream a cancelled close left open");
  close_base (self, side, NULL, NULL);
  mark_closed (self, side);
}

/* A close cancelled while it waits for another operation stops waiting and
 * skips close_notify, but still closes, as GIO asks of every close: @side
 * fails with G_IO_ERROR_CLOSED from now on, and its base stream closes as
 * soon as the operation in the way lets go of the session, at once if
 * none is left. Closing the whole connection also shuts its socket down
 * now: that tells the server, and ends a handshake or a write that waits
 * on the socket in another thread, as it could not succeed any more. */
static void
close_cancelled (PinTlsClientConnection *self,
                 GIOCondition            side)
{
  CONNECTION_DEBUG (self, "close cancelled: closing without close_notify");

  g_mutex_lock (&self->lock);
  self->read_closed |= (side & G_IO_IN) != 0;
  self->write_closed |= (side & G_IO_OUT) != 0;
  self->base_close_due |= side;
  g_cond_broadcast (&self->cond);
  wake_sources (self);
  g_mutex_unlock (&self->lock);

  if (side & G_IO_IN)
    g_cancellable_cancel (self->read_closed_wake);
  if (side & G_IO_OUT)
    g_cancellable_cancel (self->write_closed_wake);

  if (side == (G_IO_IN | G_IO_OUT) && G_IS_SOCKET_CONNECTION (self->base_io_stream))
    {
      GSocket *socket;

      socket = g_socket_connection_get_socket (G_SOCKET_CONNECTION (self->base_io_stream));
      g_socket_shutdown (socket, TRUE, TRUE, NULL);
    }

  close_base_when_due (self);
}

/* Closes one side or both. close_notify goes out once, and only after a
 * completed handshake; the base stream is closed whatever happens. */
gboolean
_pin_tls_client_connection_close_side (PinTlsClientConnection *self,
                                       GIOCondition            side,
                                       GCancellable           *cancellable,
                                       GError                **error)
{
  IoContext io = { TRUE, cancellable, NULL };
  g_autoptr(GError) bye_error = NULL;
  g_autoptr(GError) claim_error = NULL;
  gboolean closed;

  /* A connection whose construction failed never took the base stream
   * over: it stays the caller's, open. */
  if (self->construct_error != NULL)
    return TRUE;

  stop_own_handshake (self);
  if (!claim_op (self, close_op (side), TRUE, cancellable, &claim_error))
    {
      if (g_error_matches (claim_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        close_cancelled (self, side);
      g_propagate_error (error, g_steal_pointer (&claim_error));
      return FALSE;
    }

  if (close_needs_bye (self, side))
    send_close_notify (self, &io, &bye_error);
  g_clear_error (&io.error);
  if (close_needs_drain (self, side))
    drain_input (self);

  closed = close_base (self, side, cancellable, error);
  mark_closed (self, side);

  if (closed && bye_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&bye_error));
      return FALSE;
    }

  return closed;
}

/* Claims @op without waiting for it. When it must wait, returns FALSE
 * with no error and a source in @wait that fires once what is in the way
 * is over. */
static gboolean
try_claim_op (PinTlsClientConnection *self,
              Operation               op,
              GCancellable           *cancellable,
              GSource               **wait,
              GError                **error)
{
  GError *refusal;
  gboolean claimed = FALSE;

  *wait = NULL;
  g_mutex_lock (&self->lock);
  refusal = op_refusal (self, op, cancellable);
  if (refusal == NULL && op_must_wait (self, op))
    {
      *wait = g_cancellable_source_new (self->wake);
      self->wake_used = TRUE;
    }
  else if (refusal == NULL)
    {
      mark_op (self, op, TRUE);
      claimed = TRUE;
    }
  g_mutex_unlock (&self->lock);

  if (refusal != NULL)
    g_propagate_error (error, refusal);

  return claimed;
}

/* An asynchronous close, run by sources on the context of the thread that
 * asked for it, like an asynchronous handshake: it waits for conflicting
 * operations, sends close_notify and closes the base stream, and never
 * blocks nor uses another thread. */
typedef struct
{
  PinTlsClientConnection *connection;
  GIOCondition side;
  gboolean claimed;
  gboolean bye_pending;
  gboolean drain_pending;
  GError *bye_error;
  IoContext io;
} CloseJob;

static void
close_job_free (CloseJob *job)
{
  g_clear_error (&job->bye_error);
  g_clear_error (&job->io.error);
  g_object_unref (job->connection);
  g_free (job);
}

static gboolean close_job_step (GTask *task);

static gboolean
close_job_wake_cb (GCancellable *wake,
                   gpointer      data)
{
  return close_job_step (data);
}

static gboolean
close_job_pollable_cb (GObject *pollable,
                       gpointer data)
{
  return close_job_step (data);
}

/* Waits for @source, or for the close to be cancelled. */
static void
close_job_wait (GTask   *task,
                GSource *source)
{
  add_cancellable_child (source, g_task_get_cancellable (task));
  g_source_set_callback (source, G_SOURCE_FUNC (close_job_wake_cb), g_object_ref (task),
                         g_object_unref);
  g_source_set_static_name (source, "[pintls] close");
  g_source_attach (source, g_task_get_context (task));
  g_source_unref (source);
}

static void
close_base_cb (GObject      *base,
               GAsyncResult *result,
               gpointer      data)
{
  g_autoptr(GTask) task = data;
  CloseJob *job = g_task_get_task_data (task);
  GError *error = NULL;
  gboolean closed;

  if (G_IS_IO_STREAM (base))
    closed = g_io_stream_close_finish (G_IO_STREAM (base), result, &error);
  else if (G_IS_INPUT_STREAM (base))
    closed = g_input_stream_close_finish (G_INPUT_STREAM (base), result, &error);
  else
    closed = g_output_stream_close_finish (G_OUTPUT_STREAM (base), result, &error);

  mark_closed (job->connection, job->side);

  if (closed && job->bye_error != NULL)
    g_task_return_error (task, g_steal_pointer (&job->bye_error));
  else if (!closed)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
close_base_async (GTask *task)
{
  CloseJob *job = g_task_get_task_data (task);
  PinTlsClientConnection *self = job->connection;
  GCancellable *cancellable = g_task_get_cancellable (task);
  int priority = g_task_get_priority (task);

  if (job->side == (G_IO_IN | G_IO_OUT))
    g_io_stream_close_async (self->base_io_stream, priority, cancellable, close_base_cb,
                             g_object_ref (task));
  else if (job->side == G_IO_IN)
    g_input_stream_close_async (G_INPUT_STREAM (self->base_input), priority, cancellable,
                                close_base_cb, g_object_ref (task));
  else
    g_output_stream_close_async (G_OUTPUT_STREAM (self->base_output), priority,
                                 cancellable, close_base_cb, g_object_ref (task));
}

static gboolean
close_job_step (GTask *task)
{
  CloseJob *job = g_task_get_task_data (task);
  PinTlsClientConnection *self = job->connection;
  GError *error = NULL;
  GSource *wait = NULL;

  if (!job->claimed)
    {
      job->claimed = try_claim_op (self, close_op (job->side), job->io.cancellable, &wait,
                                   &error);
      if (wait != NULL)
        {
          close_job_wait (task, wait);
          return G_SOURCE_REMOVE;
        }
      if (!job->claimed)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            close_cancelled (self, job->side);
          g_task_return_error (task, error);
          return G_SOURCE_REMOVE;
        }
      job->bye_pending = close_needs_bye (self, job->side);
      job->drain_pending = close_needs_drain (self, job->side);
    }

  if (job->bye_pending && !send_close_notify (self, &job->io, &job->bye_error))
    {
      if (g_error_matches (job->bye_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_clear_error (&job->bye_error);
          wait = g_pollable_output_stream_create_source (self->base_output,
                                                         job->io.cancellable);
          g_source_set_callback (wait, G_SOURCE_FUNC (close_job_pollable_cb),
                                 g_object_ref (task), g_object_unref);
          g_source_attach (wait, g_task_get_context (task));
          g_source_unref (wait);
          return G_SOURCE_REMOVE;
        }
    }
  job->bye_pending = FALSE;

  if (job->drain_pending)
    drain_input (self);
  job->drain_pending = FALSE;

  close_base_async (task);
  return G_SOURCE_REMOVE;
}

static void
close_side_async (PinTlsClientConnection *self,
                  GTask                  *task,
                  GIOCondition            side)
{
  CloseJob *job = g_new0 (CloseJob, 1);

  job->connection = g_object_ref (self);
  job->side = side;
  job->io.cancellable = g_task_get_cancellable (task);
  g_task_set_task_data (task, job, (GDestroyNotify) close_job_free);

  /* See _pin_tls_client_connection_close_side(). */
  if (self->construct_error != NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  stop_own_handshake (self);
  close_job_step (task);
}

/* What the streams' close_async call: @task completes when @side is
 * closed. */
void
_pin_tls_client_connection_close_side_async (PinTlsClientConnection *self,
                                             GIOCondition            side,
                                             GTask                  *task)
{
  close_side_async (self, task, side);
}

static gboolean
pin_tls_client_connection_close (GIOStream    *stream,
                                 GCancellable *cancellable,
                                 GError      **error)
{
  PinTlsClientConnection *self = PIN_TLS_CLIENT_CONNECTION (stream);

  return _pin_tls_client_connection_close_side (self, G_IO_IN | G_IO_OUT,
                                                cancellable, error);
}

static void
pin_tls_client_connection_close_async (GIOStream          *stream,
                                       int                 io_priority,
                                       GCancellable       *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer            user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);

  g_task_set_source_tag (task, pin_tls_client_connection_close_async);
  g_task_set_priority (task, io_priority);
  close_side_async (PIN_TLS_CLIENT_CONNECTION (stream), task, G_IO_IN | G_IO_OUT);
}

static gboolean
pin_tls_client_connection_close_finish (GIOStream    *stream,
                                        GAsyncResult *result,
                                        GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result,
                                                  pin_tls_client_connection_close_async),
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* GTlsConnection ------------------------------------------------------- */

static GInputStream *
pin_tls_client_connection_get_input_stream (GIOStream *stream)
{
  return PIN_TLS_CLIENT_CONNECTION (stream)->input;
}

static GOutputStream *
pin_tls_client_connection_get_output_stream (GIOStream *stream)
{
  return PIN_TLS_CLIENT_CONNECTION (stream)->output;
}

static const char *
pin_tls_client_connection_get_negotiated_protocol (GTlsConnection *connection)
{
  PinTlsClientConnection *self = PIN_TLS_CLIENT_CONNECTION (connection);

  return self->negotiated_protocol;
}

static gboolean
gnutls_binding_type (GTlsChannelBindingType    type,
                     gnutls_channel_binding_t *gnutls_type)
{
  switch (type)
    {
    case G_TLS_CHANNEL_BINDING_TLS_UNIQUE:
      *gnutls_type = GNUTLS_CB_TLS_UNIQUE;
      return TRUE;
    case G_TLS_CHANNEL_BINDING_TLS_SERVER_END_POINT:
      *gnutls_type = GNUTLS_CB_TLS_SERVER_END_POINT;
      return TRUE;
#if GNUTLS_VERSION_NUMBER >= 0x030702
    case G_TLS_CHANNEL_BINDING_TLS_EXPORTER:
      *gnutls_type = GNUTLS_CB_TLS_EXPORTER;
      return TRUE;
#endif
    default:
      return FALSE;
    }
}

/* GnuTLS has no data for a type that the TLS version of the session does
 * not define (tls-unique in TLS 1.3; tls-exporter in TLS 1.2 without the
 * extended master secret), nor for a certificate whose signature names
 * no usable hash. */
static void
set_binding_error (GError               **error,
                   GTlsChannelBindingType type,
                   int                    ret)
{
  switch (ret)
    {
    case GNUTLS_E_CHANNEL_BINDING_NOT_AVAILABLE:
    case GNUTLS_E_UNIMPLEMENTED_FEATURE:
      g_set_error (error, G_TLS_CHANNEL_BINDING_ERROR,
                   G_TLS_CHANNEL_BINDING_ERROR_NOT_SUPPORTED,
                   "This TLS session has no %s channel binding data",
                   type == G_TLS_CHANNEL_BINDING_TLS_UNIQUE ? "tls-unique"
                   : type == G_TLS_CHANNEL_BINDING_TLS_EXPORTER ? "tls-exporter"
                   : "tls-server-end-point");
      break;
    /* GCOVR_EXCL_START: GnuTLS 3.7 never gives empty data with success,
     * and otherwise fails after a handshake only when out of memory. */
    case 0:
      g_set_error_literal (error, G_TLS_CHANNEL_BINDING_ERROR,
                           G_TLS_CHANNEL_BINDING_ERROR_GENERAL_ERROR,
                           "GnuTLS gave empty channel binding data");
      break;
    default:
      g_set_error (error, G_TLS_CHANNEL_BINDING_ERROR,
                   G_TLS_CHANNEL_BINDING_ERROR_GENERAL_ERROR,
                   "Cannot get channel binding data: %s", gnutls_strerror (ret));
      break;
      /* GCOVR_EXCL_STOP */
    }
}

static gboolean
pin_tls_client_connection_get_binding_data (GTlsConnection        *connection,
                                            GTlsChannelBindingType type,
                                            GByteArray            *data,
                                            GError               **error)
{
  PinTlsClientConnection *self = PIN_TLS_CLIENT_CONNECTION (connection);
  gnutls_channel_binding_t gnutls_type;
  gnutls_datum_t binding = { NULL, 0 };
  gboolean handshaken;
  int ret;

  g_mutex_lock (&self->lock);
  handshaken = self->handshake_done;
  g_mutex_unlock (&self->lock);

  if (!handshaken)
    {
      g_set_error_literal (error, G_TLS_CHANNEL_BINDING_ERROR,
                           G_TLS_CHANNEL_BINDING_ERROR_INVALID_STATE,
                           "The TLS handshake has not completed");
      return FALSE;
    }

  if (!gnutls_binding_type (type, &gnutls_type))
    {
      g_set_error_literal (error, G_TLS_CHANNEL_BINDING_ERROR,
                           G_TLS_CHANNEL_BINDING_ERROR_NOT_IMPLEMENTED,
                           "This channel binding type is not implemented");
      return FALSE;
    }

  ret = gnutls_session_channel_binding (self->session, gnutls_type, &binding);
  if (ret < 0 || binding.size == 0)
    {
      set_binding_error (error, type, ret);
      gnutls_free (binding.data);
      return FALSE;
    }

  if (data != NULL)
    {
      g_byte_array_set_size (data, 0);
      g_byte_array_append (data, binding.data, binding.size);
    }
  gnutls_free (binding.data);

  return TRUE;
}

/* The last session @source saved is offered at @connection's handshake
 * if it was saved under the key that handshake files its own under: for
 * the same server name and port, the same pins, trust mode and authorities.
 * Otherwise, and without resumption on, nothing is offered. */
static void
pin_tls_client_connection_copy_session_state (GTlsClientConnection *connection,
                                              GTlsClientConnection *source)
{
  PinTlsClientConnection *self = PIN_TLS_CLIENT_CONNECTION (connection);
  PinTlsClientConnection *other;
  GBytes *data = NULL;
  char *key = NULL;

  if (!PIN_TLS_IS_CLIENT_CONNECTION (source))
    return;

  other = PIN_TLS_CLIENT_CONNECTION (source);
  g_mutex_lock (&other->lock);
  if (other->session_data != NULL)
    {
      data = g_bytes_ref (other->session_data);
      key = g_strdup (other->session_key);
    }
  g_mutex_unlock (&other->lock);

  if (data == NULL)
    return;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->copied_session_data, g_bytes_unref);
  g_free (self->copied_session_key);
  self->copied_session_data = data;
  self->copied_session_key = key;
  g_mutex_unlock (&self->lock);
}

/* For the tests: the key this connection's sessions are filed under. */
char *
_pin_tls_client_connection_dup_session_key (PinTlsClientConnection *self)
{
  char *key;

  g_mutex_lock (&self->lock);
  key = g_strdup (self->session_key);
  g_mutex_unlock (&self->lock);

  return key;
}

/* Checks what construction was given and sets up the GnuTLS session. */
static gboolean
set_up (PinTlsClientConnection *self,
        GError                **error)
{
  GInputStream *base_input;
  GOutputStream *base_output;
  int ret;

  if (self->base_io_stream == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "A pinned connection needs a base stream");
      return FALSE;
    }
  if (self->pins == NULL && self->policy == NULL)
    {
      g_set_error_literal (error, PIN_TLS_ERROR, PIN_TLS_ERROR_EMPTY_PIN_SET,
                           "A pinned connection needs a pin set or a policy");
      return FALSE;
    }
  if (self->pins != NULL && self->policy != NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "A pinned connection takes a pin set or a policy, "
                           "not both");
      return FALSE;
    }

  base_input = g_io_stream_get_input_stream (self->base_io_stream);
  base_output = g_io_stream_get_output_stream (self->base_io_stream);
  if (!G_IS_POLLABLE_INPUT_STREAM (base_input)
      || !g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (base_input))
      || !G_IS_POLLABLE_OUTPUT_STREAM (base_output)
      || !g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (base_output)))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           "The base stream of a TLS connection must be pollable");
      return FALSE;
    }
  self->base_input = G_POLLABLE_INPUT_STREAM (base_input);
  self->base_output = G_POLLABLE_OUTPUT_STREAM (base_output);

  /* Without resumption, the handshake turns tickets off. */
  ret = gnutls_init (&self->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
  if (ret == 0)
    ret = set_default_priority (self->session, FALSE);
  if (ret == 0)
    ret = gnutls_credentials_set (self->session, GNUTLS_CRD_CERTIFICATE,
                                  shared_credentials ());
  /* GCOVR_EXCL_START: GnuTLS fails here only when out of memory, or with
   * an invalid default priority in the system's configuration (see
   * set_default_priority()). */
  if (ret < 0)
    {
      g_clear_pointer (&self->session, gnutls_deinit);
      g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_MISC,
                   "Cannot set up the TLS session: %s", gnutls_strerror (ret));
      return FALSE;
    }
  /* GCOVR_EXCL_STOP */

  gnutls_session_set_ptr (self->session, self);
  gnutls_transport_set_ptr (self->session, self);
  gnutls_transport_set_pull_function (self->session, pull_cb);
  gnutls_transport_set_pull_timeout_function (self->session, pull_timeout_cb);
  gnutls_transport_set_vec_push_function (self->session, vec_push_cb);

  return TRUE;
}

/* Construction does all the work, so that a connection made with
 * g_object_new(), as bindings make it, is as complete as one made with
 * g_initable_new(). If it fails, the error waits for init, and every
 * operation fails with it, as after a failed handshake: nothing can run
 * over such a connection, and it never touches the base stream. */
static void
pin_tls_client_connection_constructed (GObject *object)
{
  PinTlsClientConnection *self = PIN_TLS_CLIENT_CONNECTION (object);

  G_OBJECT_CLASS (pin_tls_client_connection_parent_class)->constructed (object);

  if (!set_up (self, &self->construct_error))
    {
      CONNECTION_DEBUG (self, "construction failed: %s", self->construct_error->message);
      self->handshake_error = g_error_copy (self->construct_error);
      g_prefix_error (&self->handshake_error, "This connection could not be set up: ");
    }

  self->input = _pin_tls_input_stream_new (self);
  self->output = _pin_tls_output_stream_new (self);
}

static gboolean
pin_tls_client_connection_initable_init (GInitable    *initable,
                                         GCancellable *cancellable,
                                         GError      **error)
{
  PinTlsClientConnection *self = PIN_TLS_CLIENT_CONNECTION (initable);

  if (self->construct_error != NULL)
    {
      g_propagate_error (error, g_error_copy (self->construct_error));
      return FALSE;
    }

  return TRUE;
}

/* GObject -------------------------------------------------------------- */

static gpointer
copy_byte_array (gconstpointer array,
                 gpointer      user_data)
{
  return g_byte_array_ref ((GByteArray *) array);
}

static void
pin_tls_client_connection_get_property (GObject    *object,
                                        guint       prop_id,
                                        GValue     *value,
                                        GParamSpec *pspec)
{
  PinTlsClientConnection *self = PIN_TLS_CLIENT_CONNECTION (object);

  g_mutex_lock (&self->lock);
  switch (prop_id)
    {
    case PROP_PINS:
      g_value_set_object (value, self->pins);
      break;
    case PROP_POLICY:
      g_value_set_object (value, self->policy);
      break;
    case PROP_MODE:
      g_value_set_enum (value, self->mode);
      break;
    case PROP_PRESENTED_PINS:
      g_value_set_boxed (value, get_presented_pins (self));
      break;
    case PROP_SESSION_RESUMPTION_ENABLED:
      g_value_set_boolean (value, self->resumption_enabled);
      break;
    case PROP_SESSION_RESUMED:
      g_value_set_boolean (value, self->session_resumed);
      break;
    case PROP_BASE_IO_STREAM:
      g_value_set_object (value, self->base_io_stream);
      break;
    case PROP_REQUIRE_CLOSE_NOTIFY:
      g_value_set_boolean (value, self->require_close_notify);
      break;
    case PROP_REHANDSHAKE_MODE:
      g_value_set_enum (value, G_TLS_REHANDSHAKE_SAFELY);
      break;
    case PROP_USE_SYSTEM_CERTDB:
      g_value_set_boolean (value, self->use_system_certdb);
      break;
    case PROP_DATABASE:
      if (self->database_is_set)
        g_value_set_object (value, self->database);
      else if (self->use_system_certdb)
        g_value_take_object (value, g_tls_backend_get_default_database (g_tls_backend_get_default ()));
      break;
    case PROP_INTERACTION:
      g_value_set_object (value, self->interaction);
      break;
    case PROP_CERTIFICATE:
      g_value_set_object (value, self->certificate);
      break;
    case PROP_PEER_CERTIFICATE:
      g_value_set_object (value, get_peer_certificate (self));
      break;
    case PROP_PEER_CERTIFICATE_ERRORS:
      g_value_set_flags (value, self->peer_certificate_errors);
      break;
    case PROP_ADVERTISED_PROTOCOLS:
      g_value_set_boxed (value, self->advertised_protocols);
      break;
    case PROP_NEGOTIATED_PROTOCOL:
      g_value_set_string (value, self->negotiated_protocol);
      break;
    case PROP_PROTOCOL_VERSION:
      g_value_set_enum (value, self->protocol_version);
      break;
    case PROP_CIPHERSUITE_NAME:
      g_value_set_string (value, self->ciphersuite_name);
      break;
    case PROP_VALIDATION_FLAGS:
      g_value_set_flags (value, self->validation_flags);
      break;
    case PROP_SERVER_IDENTITY:
      g_value_set_object (value, self->server_identity);
      break;
    case PROP_USE_SSL3:
      g_value_set_boolean (value, FALSE);
      break;
    case PROP_ACCEPTED_CAS:
      g_value_set_pointer (value, g_list_copy_deep (self->accepted_cas,
                                                    copy_byte_array, NULL));
      break;
    /* GCOVR_EXCL_START: GObject passes only the ids of installed properties */
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
      /* GCOVR_EXCL_STOP */
    }
  g_mutex_unlock (&self->lock);
}

static void
pin_tls_client_connection_set_property (GObject      *object,
                                        guint         prop_id,
                                        const GValue *value,
                                        GParamSpec   *pspec)
{
  PinTlsClientConnection *self = PIN_TLS_CLIENT_CONNECTION (object);

  g_mutex_lock (&self->lock);
  switch (prop_id)
    {
    case PROP_PINS:
      g_set_object (&self->pins, g_value_get_object (value));
      break;
    case PROP_POLICY:
      g_set_object (&self->policy, g_value_get_object (value));
      break;
    case PROP_MODE:
      self->mode = g_value_get_enum (value);
      break;
    case PROP_SESSION_RESUMPTION_ENABLED:
      self->resumption_enabled = g_value_get_boolean (value);
      break;
    case PROP_BASE_IO_STREAM:
      g_set_object (&self->base_io_stream, g_value_get_object (value));
      break;
    case PROP_REQUIRE_CLOSE_NOTIFY:
      self->require_close_notify = g_value_get_boolean (value);
      break;
    case PROP_REHANDSHAKE_MODE:
    case PROP_USE_SSL3:
      /* Deprecated by GIO; pintls never renegotiates nor speaks SSL 3. */
      break;
    case PROP_USE_SYSTEM_CERTDB:
      self->use_system_certdb = g_value_get_boolean (value);
      break;
    case PROP_DATABASE:
      g_set_object (&self->database, g_value_get_object (value));
      self->database_is_set = TRUE;
      break;
    case PROP_INTERACTION:
      g_set_object (&self->interaction, g_value_get_object (value));
      break;
    case PROP_CERTIFICATE:
      g_set_object (&self->certificate, g_value_get_object (value));
      break;
    case PROP_ADVERTISED_PROTOCOLS:
      g_strfreev (self->advertised_protocols);
      self->advertised_protocols = g_value_dup_boxed (value);
      break;
    case PROP_VALIDATION_FLAGS:
      self->validation_flags = g_value_get_flags (value);
      break;
    case PROP_SERVER_IDENTITY:
      g_set_object (&self->server_identity, g_value_get_object (value));
      break;
    /* GCOVR_EXCL_START: GObject passes only the ids of installed properties */
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
      /* GCOVR_EXCL_STOP */
    }
  g_mutex_unlock (&self->lock);
}

static void
pin_tls_client_connection_finalize (GObject *object)
{
  PinTlsClientConnection *self = PIN_TLS_CLIENT_CONNECTION (object);

  g_clear_object (&self->input);
  g_clear_object (&self->output);
  g_clear_pointer (&self->session, gnutls_deinit);
  g_clear_pointer (&self->trust, _pin_tls_trust_free);
  g_clear_object (&self->base_io_stream);
  g_clear_object (&self->pins);
  g_clear_object (&self->policy);
  _pin_tls_rule_clear (&self->rule);
  g_clear_object (&self->server_identity);
  g_clear_object (&self->database);
  g_clear_object (&self->interaction);
  g_clear_object (&self->certificate);
  g_clear_pointer (&self->advertised_protocols, g_strfreev);
  g_clear_pointer (&self->server_name, g_free);
  g_clear_pointer (&self->session_key, g_free);
  g_clear_pointer (&self->session_data, g_bytes_unref);
  g_clear_pointer (&self->copied_session_key, g_free);
  g_clear_pointer (&self->copied_session_data, g_bytes_unref);
  g_clear_pointer (&self->peer_chain, g_ptr_array_unref);
  g_clear_object (&self->peer_certificate);
  g_clear_pointer (&self->presented_chain, g_ptr_array_unref);
  g_clear_pointer (&self->presented_pins, g_strfreev);
  g_clear_error (&self->read_end_error);
  g_clear_pointer (&self->negotiated_protocol, g_free);
  g_clear_pointer (&self->ciphersuite_name, g_free);
  g_list_free_full (self->accepted_cas, (GDestroyNotify) g_byte_array_unref);
  g_clear_error (&self->handshake_error);
  g_clear_error (&self->construct_error);
  g_clear_object (&self->wake);
  g_clear_object (&self->read_closed_wake);
  g_clear_object (&self->write_closed_wake);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);

  G_OBJECT_CLASS (pin_tls_client_connection_parent_class)->finalize (object);
}

static void
pin_tls_client_connection_class_init (PinTlsClientConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);
  GTlsConnectionClass *connection_class = G_TLS_CONNECTION_CLASS (klass);

  object_class->get_property = pin_tls_client_connection_get_property;
  object_class->set_property = pin_tls_client_connection_set_property;
  object_class->constructed = pin_tls_client_connection_constructed;
  object_class->finalize = pin_tls_client_connection_finalize;

  stream_class->get_input_stream = pin_tls_client_connection_get_input_stream;
  stream_class->get_output_stream = pin_tls_client_connection_get_output_stream;
  stream_class->close_fn = pin_tls_client_connection_close;
  stream_class->close_async = pin_tls_client_connection_close_async;
  stream_class->close_finish = pin_tls_client_connection_close_finish;

  connection_class->handshake = pin_tls_client_connection_handshake;
  connection_class->handshake_async = pin_tls_client_connection_handshake_async;
  connection_class->handshake_finish = pin_tls_client_connection_handshake_finish;
  connection_class->get_binding_data = pin_tls_client_connection_get_binding_data;
  connection_class->get_negotiated_protocol = pin_tls_client_connection_get_negotiated_protocol;

  /**
   * PinTlsClientConnection:pins:
   *
   * The pins the server must match. Set once, at construction; %NULL for
   * a connection with a [property@PinTls.ClientConnection:policy].
   */
  own_props[PROP_PINS] =
    g_param_spec_object ("pins", NULL, NULL, PIN_TLS_TYPE_PIN_SET,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY
                         | G_PARAM_STATIC_STRINGS);

  /**
   * PinTlsClientConnection:policy:
   *
   * The policy whose entry for the server decides, instead of
   * [property@PinTls.ClientConnection:pins]: its pins, its trust mode, and
   * whether it only reports or has expired. It is looked up when the
   * handshake starts; a server it refuses
   * (%PIN_TLS_ERROR_HOST_NOT_PINNED) fails before anything is sent, and
   * every handshake is reported through [signal@PinTls.Policy::report].
   * Set once, at construction.
   */
  own_props[PROP_POLICY] =
    g_param_spec_object ("policy", NULL, NULL, PIN_TLS_TYPE_POLICY,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY
                         | G_PARAM_STATIC_STRINGS);

  /**
   * PinTlsClientConnection:mode:
   *
   * How the server is trusted: by pins alone, or by a certificate
   * authority and pins. Read when the handshake starts. A connection with a
   * [property@PinTls.ClientConnection:policy] uses the mode of the policy's
   * entry instead.
   */
  own_props[PROP_MODE] =
    g_param_spec_enum ("mode", NULL, NULL, PIN_TLS_TYPE_MODE,
                       PIN_TLS_MODE_PIN_ONLY,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT
                       | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * PinTlsClientConnection:presented-pins:
   *
   * The public-key pin (`sha256/…`) of every certificate the server
   * presented in the last handshake, in the order it sent them, leaf first;
   * also after a failed handshake. This is how to see what a server
   * presents when its pins do not match.
   */
  own_props[PROP_PRESENTED_PINS] =
    g_param_spec_boxed ("presented-pins", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * PinTlsClientConnection:session-resumption-enabled:
   *
   * Whether the handshake may resume a session an earlier connection of
   * this process saved, and whether this connection saves its own. Off by
   * default. Read when the handshake starts.
   *
   * A session is only offered to a connection to the same server name and
   * port that enforces the same pins, in the same
   * [property@PinTls.ClientConnection:mode], with the same certificate
   * authorities: connections enforcing anything else never share one. A
   * session is offered once, and the pins (and, in
   * %PIN_TLS_MODE_CA_AND_PINS mode, the authorities) are checked again on
   * every resumed handshake, against the certificates of the session, as
   * on a full one; a resumed session they refuse fails the handshake with
   * the same errors, %PIN_TLS_ERROR_PIN_MISMATCH for a mismatch. Only a
   * handshake that passed this check saves its session: a TLS 1.2 one
   * when the handshake completes, a TLS 1.3 one when the server's ticket
   * arrives, which the first read after the handshake takes in. Saved
   * sessions are kept in memory, for ten minutes at most.
   *
   * A resumed handshake is faster and costs the server less, but the
   * server then skips proving again that it holds its private key: it
   * proves instead that it holds the secret of the earlier session.
   */
  own_props[PROP_SESSION_RESUMPTION_ENABLED] =
    g_param_spec_boolean ("session-resumption-enabled", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY
                          | G_PARAM_STATIC_STRINGS);

  /**
   * PinTlsClientConnection:session-resumed:
   *
   * Whether the last handshake resumed a saved session (see
   * [property@PinTls.ClientConnection:session-resumption-enabled]); also
   * after a failed handshake, when the server resumed a session that the
   * pins then refused.
   */
  own_props[PROP_SESSION_RESUMED] =
    g_param_spec_boolean ("session-resumed", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_OWN_PROPS, own_props);

  g_object_class_override_property (object_class, PROP_BASE_IO_STREAM, "base-io-stream");
  g_object_class_override_property (object_class, PROP_REQUIRE_CLOSE_NOTIFY, "require-close-notify");
  g_object_class_override_property (object_class, PROP_REHANDSHAKE_MODE, "rehandshake-mode");
  g_object_class_override_property (object_class, PROP_USE_SYSTEM_CERTDB, "use-system-certdb");
  g_object_class_override_property (object_class, PROP_DATABASE, "database");
  g_object_class_override_property (object_class, PROP_INTERACTION, "interaction");
  g_object_class_override_property (object_class, PROP_CERTIFICATE, "certificate");
  g_object_class_override_property (object_class, PROP_PEER_CERTIFICATE, "peer-certificate");
  g_object_class_override_property (object_class, PROP_PEER_CERTIFICATE_ERRORS, "peer-certificate-errors");
  g_object_class_override_property (object_class, PROP_ADVERTISED_PROTOCOLS, "advertised-protocols");
  g_object_class_override_property (object_class, PROP_NEGOTIATED_PROTOCOL, "negotiated-protocol");
  g_object_class_override_property (object_class, PROP_PROTOCOL_VERSION, "protocol-version");
  g_object_class_override_property (object_class, PROP_CIPHERSUITE_NAME, "ciphersuite-name");
  g_object_class_override_property (object_class, PROP_VALIDATION_FLAGS, "validation-flags");
  g_object_class_override_property (object_class, PROP_SERVER_IDENTITY, "server-identity");
  g_object_class_override_property (object_class, PROP_USE_SSL3, "use-ssl3");
  g_object_class_override_property (object_class, PROP_ACCEPTED_CAS, "accepted-cas");
}

static void
pin_tls_client_connection_init (PinTlsClientConnection *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->wake = g_cancellable_new ();
  self->read_closed_wake = g_cancellable_new ();
  self->write_closed_wake = g_cancellable_new ();
  self->protocol_version = G_TLS_PROTOCOL_VERSION_UNKNOWN;
}

static void
pin_tls_client_connection_initable_iface_init (GInitableIface *iface)
{
  iface->init = pin_tls_client_connection_initable_init;
}

static void
pin_tls_client_connection_client_iface_init (GTlsClientConnectionInterface *iface)
{
  iface->copy_session_state = pin_tls_client_connection_copy_session_state;
}

/* Public API ----------------------------------------------------------- */

/**
 * pin_tls_client_connection_new:
 * @base_io_stream: the stream to run TLS over, usually a
 *   [class@Gio.SocketConnection]; both of its streams must be pollable
 * @server_identity: the server's name or address: sent as SNI and, in
 *   %PIN_TLS_MODE_CA_AND_PINS mode, checked against its certificate
 * @pins: the pins the server must match
 * @error: return location for a #GError
 *
 * Creates a pinned TLS client connection over @base_io_stream in
 * %PIN_TLS_MODE_PIN_ONLY mode; set [property@PinTls.ClientConnection:mode]
 * before the handshake to change that. The handshake runs when
 * [method@Gio.TlsConnection.handshake] is called or at the first read or
 * write.
 *
 * The error is %G_IO_ERROR_NOT_SUPPORTED if @base_io_stream is not
 * pollable, or in the %G_TLS_ERROR domain if GnuTLS cannot set up a
 * session.
 *
 * Returns: (transfer full): the new connection, or %NULL on error
 */
PinTlsClientConnection *
pin_tls_client_connection_new (GIOStream          *base_io_stream,
                               GSocketConnectable *server_identity,
                               PinTlsPinSet       *pins,
                               GError            **error)
{
  g_return_val_if_fail (G_IS_IO_STREAM (base_io_stream), NULL);
  g_return_val_if_fail (G_IS_SOCKET_CONNECTABLE (server_identity), NULL);
  g_return_val_if_fail (PIN_TLS_IS_PIN_SET (pins), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_initable_new (PIN_TLS_TYPE_CLIENT_CONNECTION, NULL, error,
                         "base-io-stream", base_io_stream,
                         "server-identity", server_identity,
                         "pins", pins,
                         NULL);
}

/**
 * pin_tls_client_connection_new_with_policy:
 * @base_io_stream: the stream to run TLS over, usually a
 *   [class@Gio.SocketConnection]; both of its streams must be pollable
 * @server_identity: the server's name or address: sent as SNI, looked up
 *   in @policy and, for entries in %PIN_TLS_MODE_CA_AND_PINS mode, checked
 *   against its certificate
 * @policy: the policy whose entry for the server decides
 * @error: return location for a #GError
 *
 * Creates a pinned TLS client connection over @base_io_stream that
 * enforces what @policy asks of the server: the pins, mode, expiry and
 * enforcement of the entry that covers it, looked up when the handshake
 * starts. The trust for %PIN_TLS_MODE_CA_AND_PINS entries is the
 * connection's [property@Gio.TlsConnection:database], the system's by
 * default.
 *
 * ```c
 * connection = pin_tls_client_connection_new_with_policy (G_IO_STREAM (tcp), server,
 *                                                         policy, &error);
 * ```
 *
 * A handshake with a server that @policy refuses fails with
 * %PIN_TLS_ERROR_HOST_NOT_PINNED before anything is sent; one whose pins
 * do not match fails with %PIN_TLS_ERROR_PIN_MISMATCH, or
 * %PIN_TLS_ERROR_PINS_EXPIRED after the entry's expiry.
 *
 * The error here is %G_IO_ERROR_NOT_SUPPORTED if @base_io_stream is not
 * pollable, or in the %G_TLS_ERROR domain if GnuTLS cannot set up a
 * session.
 *
 * Returns: (transfer full): the new connection, or %NULL on error
 */
PinTlsClientConnection *
pin_tls_client_connection_new_with_policy (GIOStream          *base_io_stream,
                                           GSocketConnectable *server_identity,
                                           PinTlsPolicy       *policy,
                                           GError            **error)
{
  g_return_val_if_fail (G_IS_IO_STREAM (base_io_stream), NULL);
  g_return_val_if_fail (G_IS_SOCKET_CONNECTABLE (server_identity), NULL);
  g_return_val_if_fail (PIN_TLS_IS_POLICY (policy), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_initable_new (PIN_TLS_TYPE_CLIENT_CONNECTION, NULL, error,
                         "base-io-stream", base_io_stream,
                         "server-identity", server_identity,
                         "policy", policy,
                         NULL);
}

/**
 * pin_tls_client_connection_get_policy:
 * @self: a connection
 *
 * Gets the [property@PinTls.ClientConnection:policy] the connection
 * enforces, as given at construction.
 *
 * Returns: (transfer none) (nullable): the policy, or %NULL for a
 *   connection made with a pin set
 */
PinTlsPolicy *
pin_tls_client_connection_get_policy (PinTlsClientConnection *self)
{
  g_return_val_if_fail (PIN_TLS_IS_CLIENT_CONNECTION (self), NULL);

  return self->policy;
}

/**
 * pin_tls_client_connection_get_pins:
 * @self: a connection
 *
 * Gets the pin set the connection enforces, as given at construction.
 *
 * Returns: (transfer none) (nullable): the pins the server must match, or
 *   %NULL for a connection made with a policy
 */
PinTlsPinSet *
pin_tls_client_connection_get_pins (PinTlsClientConnection *self)
{
  g_return_val_if_fail (PIN_TLS_IS_CLIENT_CONNECTION (self), NULL);

  return self->pins;
}

/**
 * pin_tls_client_connection_get_mode:
 * @self: a connection
 *
 * Gets the [property@PinTls.ClientConnection:mode] the next handshake uses.
 *
 * Returns: how the server is trusted
 */
PinTlsMode
pin_tls_client_connection_get_mode (PinTlsClientConnection *self)
{
  g_return_val_if_fail (PIN_TLS_IS_CLIENT_CONNECTION (self), PIN_TLS_MODE_PIN_ONLY);

  return self->mode;
}

/**
 * pin_tls_client_connection_set_mode:
 * @self: a connection
 * @mode: how the server is trusted
 *
 * Chooses how the server is trusted. It takes effect at the handshake, so
 * set it before.
 */
void
pin_tls_client_connection_set_mode (PinTlsClientConnection *self,
                                    PinTlsMode              mode)
{
  g_return_if_fail (PIN_TLS_IS_CLIENT_CONNECTION (self));

  if (self->mode == mode)
    return;

  g_mutex_lock (&self->lock);
  self->mode = mode;
  g_mutex_unlock (&self->lock);
  g_object_notify_by_pspec (G_OBJECT (self), own_props[PROP_MODE]);
}

/**
 * pin_tls_client_connection_get_presented_pins:
 * @self: a connection
 *
 * Gets the public-key pins of the certificates the server presented in the
 * last handshake, in the order it sent them: see
 * [property@PinTls.ClientConnection:presented-pins].
 *
 * Returns: (transfer full) (nullable) (array zero-terminated=1): the pins,
 *   or %NULL before a server presented certificates
 */
char **
pin_tls_client_connection_get_presented_pins (PinTlsClientConnection *self)
{
  char **pins;

  g_return_val_if_fail (PIN_TLS_IS_CLIENT_CONNECTION (self), NULL);

  g_mutex_lock (&self->lock);
  pins = g_strdupv (get_presented_pins (self));
  g_mutex_unlock (&self->lock);

  return pins;
}

/**
 * pin_tls_client_connection_get_session_resumption_enabled:
 * @self: a connection
 *
 * Gets [property@PinTls.ClientConnection:session-resumption-enabled].
 *
 * Returns: whether the handshake may resume a saved session
 */
gboolean
pin_tls_client_connection_get_session_resumption_enabled (PinTlsClientConnection *self)
{
  gboolean enabled;

  g_return_val_if_fail (PIN_TLS_IS_CLIENT_CONNECTION (self), FALSE);

  g_mutex_lock (&self->lock);
  enabled = self->resumption_enabled;
  g_mutex_unlock (&self->lock);

  return enabled;
}

/**
 * pin_tls_client_connection_set_session_resumption_enabled:
 * @self: a connection
 * @enabled: whether to resume saved sessions and save this one
 *
 * Turns session resumption on or off for this connection: see
 * [property@PinTls.ClientConnection:session-resumption-enabled]. It takes
 * effect at the handshake, so set it before.
 */
void
pin_tls_client_connection_set_session_resumption_enabled (PinTlsClientConnection *self,
                                                          gboolean                enabled)
{
  g_return_if_fail (PIN_TLS_IS_CLIENT_CONNECTION (self));

  enabled = !!enabled;
  g_mutex_lock (&self->lock);
  if (self->resumption_enabled == enabled)
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  self->resumption_enabled = enabled;
  g_mutex_unlock (&self->lock);

  g_object_notify_by_pspec (G_OBJECT (self), own_props[PROP_SESSION_RESUMPTION_ENABLED]);
}

/**
 * pin_tls_client_connection_get_session_resumed:
 * @self: a connection
 *
 * Gets [property@PinTls.ClientConnection:session-resumed].
 *
 * Returns: whether the last handshake resumed a saved session
 */
gboolean
pin_tls_client_connection_get_session_resumed (PinTlsClientConnection *self)
{
  gboolean resumed;

  g_return_val_if_fail (PIN_TLS_IS_CLIENT_CONNECTION (self), FALSE);

  g_mutex_lock (&self->lock);
  resumed = self->session_resumed;
  g_mutex_unlock (&self->lock);

  return resumed;
}
