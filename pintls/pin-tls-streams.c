/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The input and output streams of a PinTlsClientConnection. They are
 * pollable, so GIO's asynchronous reads and writes need no threads, and
 * they hold only a weak reference to their connection: once it is gone
 * they report G_IO_ERROR_CLOSED. */

#include "pin-tls-private.h"

#define PIN_TLS_TYPE_INPUT_STREAM (pin_tls_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (PinTlsInputStream, pin_tls_input_stream,
                      PIN_TLS, INPUT_STREAM, GInputStream)

#define PIN_TLS_TYPE_OUTPUT_STREAM (pin_tls_output_stream_get_type ())
G_DECLARE_FINAL_TYPE (PinTlsOutputStream, pin_tls_output_stream,
                      PIN_TLS, OUTPUT_STREAM, GOutputStream)

struct _PinTlsInputStream
{
  GInputStream parent_instance;
  GWeakRef connection;
};

struct _PinTlsOutputStream
{
  GOutputStream parent_instance;
  GWeakRef connection;
};

static void pin_tls_input_stream_pollable_iface_init (GPollableInputStreamInterface *iface);
static void pin_tls_output_stream_pollable_iface_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (PinTlsInputStream, pin_tls_input_stream,
                               G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      pin_tls_input_stream_pollable_iface_init))

G_DEFINE_FINAL_TYPE_WITH_CODE (PinTlsOutputStream, pin_tls_output_stream,
                               G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      pin_tls_output_stream_pollable_iface_init))

static PinTlsClientConnection *
get_connection (GWeakRef *ref,
                GError  **error)
{
  PinTlsClientConnection *connection = g_weak_ref_get (ref);

  if (connection == NULL)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                         "The TLS connection is gone");

  return connection;
}

/* A source for a stream whose connection is gone: ready at once, so the
 * next operation reports the closed connection. */
static GSource *
orphan_source_new (GObject *stream)
{
  GSource *source = g_pollable_source_new (stream);

  g_source_set_ready_time (source, 0);
  return source;
}

static gssize
input_read (PinTlsInputStream *self,
            void              *buffer,
            gsize              count,
            gboolean           blocking,
            GCancellable      *cancellable,
            GError           **error)
{
  g_autoptr(PinTlsClientConnection) connection = get_connection (&self->connection, error);

  if (connection == NULL)
    return -1;

  return _pin_tls_client_connection_read (connection, buffer, count, blocking,
                                          cancellable, error);
}

static gssize
pin_tls_input_stream_read (GInputStream *stream,
                           void         *buffer,
                           gsize         count,
                           GCancellable *cancellable,
                           GError      **error)
{
  return input_read (PIN_TLS_INPUT_STREAM (stream), buffer, count, TRUE,
                     cancellable, error);
}

static gssize
pin_tls_input_stream_read_nonblocking (GPollableInputStream *stream,
                                       void                 *buffer,
                                       gsize                 count,
                                       GError              **error)
{
  return input_read (PIN_TLS_INPUT_STREAM (stream), buffer, count, FALSE, NULL,
                     error);
}

static gboolean
pin_tls_input_stream_close (GInputStream *stream,
                            GCancellable *cancellable,
                            GError      **error)
{
  PinTlsInputStream *self = PIN_TLS_INPUT_STREAM (stream);
  g_autoptr(PinTlsClientConnection) connection = g_weak_ref_get (&self->connection);

  if (connection == NULL)
    return TRUE;

  return _pin_tls_client_connection_close_side (connection, G_IO_IN,
                                                cancellable, error);
}

/* Closing needs no thread: the connection does it on this thread's main
 * context. */
static void
close_side_async (GObject            *stream,
                  GWeakRef           *ref,
                  GIOCondition        side,
                  gpointer            source_tag,
                  int                 io_priority,
                  GCancellable       *cancellable,
                  GAsyncReadyCallback callback,
                  gpointer            user_data)
{
  g_autoptr(PinTlsClientConnection) connection = g_weak_ref_get (ref);
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  g_task_set_priority (task, io_priority);

  if (connection == NULL)
    g_task_return_boolean (task, TRUE);
  else
    _pin_tls_client_connection_close_side_async (connection, side, task);
}

static gboolean
close_side_finish (GObject      *stream,
                   GAsyncResult *result,
                   gpointer      source_tag,
                   GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, source_tag), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
pin_tls_input_stream_close_async (GInputStream       *stream,
                                  int                 io_priority,
                                  GCancellable       *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer            user_data)
{
  close_side_async (G_OBJECT (stream), &PIN_TLS_INPUT_STREAM (stream)->connection, G_IO_IN,
                    pin_tls_input_stream_close_async, io_priority, cancellable, callback,
                    user_data);
}

static gboolean
pin_tls_input_stream_close_finish (GInputStream *stream,
                                   GAsyncResult *result,
                                   GError      **error)
{
  return close_side_finish (G_OBJECT (stream), result, pin_tls_input_stream_close_async,
                            error);
}

static gboolean
pin_tls_input_stream_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
pin_tls_input_stream_is_readable (GPollableInputStream *stream)
{
  PinTlsInputStream *self = PIN_TLS_INPUT_STREAM (stream);
  g_autoptr(PinTlsClientConnection) connection = g_weak_ref_get (&self->connection);

  return connection == NULL
         || _pin_tls_client_connection_check (connection, G_IO_IN);
}

static GSource *
pin_tls_input_stream_create_source (GPollableInputStream *stream,
                                    GCancellable         *cancellable)
{
  PinTlsInputStream *self = PIN_TLS_INPUT_STREAM (stream);
  g_autoptr(PinTlsClientConnection) connection = g_weak_ref_get (&self->connection);

  if (connection == NULL)
    return orphan_source_new (G_OBJECT (stream));

  return _pin_tls_client_connection_create_source (connection, G_IO_IN,
                                                   cancellable);
}

static void
pin_tls_input_stream_finalize (GObject *object)
{
  PinTlsInputStream *self = PIN_TLS_INPUT_STREAM (object);

  g_weak_ref_clear (&self->connection);

  G_OBJECT_CLASS (pin_tls_input_stream_parent_class)->finalize (object);
}

static void
pin_tls_input_stream_class_init (PinTlsInputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *input_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = pin_tls_input_stream_finalize;
  input_class->read_fn = pin_tls_input_stream_read;
  input_class->close_fn = pin_tls_input_stream_close;
  input_class->close_async = pin_tls_input_stream_close_async;
  input_class->close_finish = pin_tls_input_stream_close_finish;
}

static void
pin_tls_input_stream_init (PinTlsInputStream *self)
{
}

static void
pin_tls_input_stream_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = pin_tls_input_stream_can_poll;
  iface->is_readable = pin_tls_input_stream_is_readable;
  iface->create_source = pin_tls_input_stream_create_source;
  iface->read_nonblocking = pin_tls_input_stream_read_nonblocking;
}

GInputStream *
_pin_tls_input_stream_new (PinTlsClientConnection *connection)
{
  PinTlsInputStream *self = g_object_new (PIN_TLS_TYPE_INPUT_STREAM, NULL);

  g_weak_ref_init (&self->connection, connection);

  return G_INPUT_STREAM (self);
}

static gssize
output_write (PinTlsOutputStream *self,
              const void         *buffer,
              gsize               count,
              gboolean            blocking,
              GCancellable       *cancellable,
              GError            **error)
{
  g_autoptr(PinTlsClientConnection) connection = get_connection (&self->connection, error);

  if (connection == NULL)
    return -1;

  return _pin_tls_client_connection_write (connection, buffer, count, blocking,
                                           cancellable, error);
}

static gssize
pin_tls_output_stream_write (GOutputStream *stream,
                             const void    *buffer,
                             gsize          count,
                             GCancellable  *cancellable,
                             GError       **error)
{
  return output_write (PIN_TLS_OUTPUT_STREAM (stream), buffer, count, TRUE,
                       cancellable, error);
}

static gssize
pin_tls_output_stream_write_nonblocking (GPollableOutputStream *stream,
                                         const void            *buffer,
                                         gsize                  count,
                                         GError               **error)
{
  return output_write (PIN_TLS_OUTPUT_STREAM (stream), buffer, count, FALSE,
                       NULL, error);
}

static gboolean
pin_tls_output_stream_close (GOutputStream *stream,
                             GCancellable  *cancellable,
                             GError       **error)
{
  PinTlsOutputStream *self = PIN_TLS_OUTPUT_STREAM (stream);
  g_autoptr(PinTlsClientConnection) connection = g_weak_ref_get (&self->connection);

  if (connection == NULL)
    return TRUE;

  return _pin_tls_client_connection_close_side (connection, G_IO_OUT,
                                                cancellable, error);
}

static void
pin_tls_output_stream_close_async (GOutputStream      *stream,
                                   int                 io_priority,
                                   GCancellable       *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer            user_data)
{
  close_side_async (G_OBJECT (stream), &PIN_TLS_OUTPUT_STREAM (stream)->connection, G_IO_OUT,
                    pin_tls_output_stream_close_async, io_priority, cancellable, callback,
                    user_data);
}

static gboolean
pin_tls_output_stream_close_finish (GOutputStream *stream,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  return close_side_finish (G_OBJECT (stream), result, pin_tls_output_stream_close_async,
                            error);
}

static gboolean
pin_tls_output_stream_can_poll (GPollableOutputStream *stream)
{
  return TRUE;
}

static gboolean
pin_tls_output_stream_is_writable (GPollableOutputStream *stream)
{
  PinTlsOutputStream *self = PIN_TLS_OUTPUT_STREAM (stream);
  g_autoptr(PinTlsClientConnection) connection = g_weak_ref_get (&self->connection);

  return connection == NULL
         || _pin_tls_client_connection_check (connection, G_IO_OUT);
}

static GSource *
pin_tls_output_stream_create_source (GPollableOutputStream *stream,
                                     GCancellable          *cancellable)
{
  PinTlsOutputStream *self = PIN_TLS_OUTPUT_STREAM (stream);
  g_autoptr(PinTlsClientConnection) connection = g_weak_ref_get (&self->connection);

  if (connection == NULL)
    return orphan_source_new (G_OBJECT (stream));

  return _pin_tls_client_connection_create_source (connection, G_IO_OUT,
                                                   cancellable);
}

static void
pin_tls_output_stream_finalize (GObject *object)
{
  PinTlsOutputStream *self = PIN_TLS_OUTPUT_STREAM (object);

  g_weak_ref_clear (&self->connection);

  G_OBJECT_CLASS (pin_tls_output_stream_parent_class)->finalize (object);
}

static void
pin_tls_output_stream_class_init (PinTlsOutputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GOutputStreamClass *output_class = G_OUTPUT_STREAM_CLASS (klass);

  object_class->finalize = pin_tls_output_stream_finalize;
  output_class->write_fn = pin_tls_output_stream_write;
  output_class->close_fn = pin_tls_output_stream_close;
  output_class->close_async = pin_tls_output_stream_close_async;
  output_class->close_finish = pin_tls_output_stream_close_finish;
}

static void
pin_tls_output_stream_init (PinTlsOutputStream *self)
{
}

static void
pin_tls_output_stream_pollable_iface_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = pin_tls_output_stream_can_poll;
  iface->is_writable = pin_tls_output_stream_is_writable;
  iface->create_source = pin_tls_output_stream_create_source;
  iface->write_nonblocking = pin_tls_output_stream_write_nonblocking;
}

GOutputStream *
_pin_tls_output_stream_new (PinTlsClientConnection *connection)
{
  PinTlsOutputStream *self = g_object_new (PIN_TLS_TYPE_OUTPUT_STREAM, NULL);

  g_weak_ref_init (&self->connection, connection);

  return G_OUTPUT_STREAM (self);
}
