/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "fuzz-common.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static GLogWriterOutput
drop_log_cb (GLogLevelFlags   level,
             const GLogField *fields,
             gsize            n_fields,
             gpointer         user_data)
{
  /* Input never makes pintls warn: a warning is a finding. */
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    abort ();

  return G_LOG_WRITER_HANDLED;
}

void
fuzz_init (void)
{
  static gboolean done;

  if (done)
    return;

  g_log_set_writer_func (drop_log_cb, NULL, NULL);
  done = TRUE;
}

const char *
fuzz_write_file (const uint8_t *data,
                 size_t         size)
{
  static char *path;
  int fd;

  if (path == NULL)
    {
      fd = g_file_open_tmp ("pintls-fuzz-XXXXXX", &path, NULL);
      g_assert (fd >= 0);
      close (fd);
    }

  fd = open (path, O_WRONLY | O_TRUNC);
  g_assert (fd >= 0);
  g_assert (size == 0 || write (fd, data, size) == (ssize_t) size);
  close (fd);

  return path;
}

guint
fuzz_split (const uint8_t  *data,
            size_t          size,
            gnutls_datum_t *pieces,
            guint           max_pieces)
{
  guint n = 0;

  while (size > 0 && n < max_pieces)
    {
      size_t length = size >= 2 ? (size_t) (data[0] << 8 | data[1]) : 0;

      data += MIN (size, 2);
      size -= MIN (size, 2);
      length = MIN (length, size);

      pieces[n].data = (guchar *) data;
      pieces[n].size = length;
      n++;

      data += length;
      size -= length;
    }

  return n;
}
