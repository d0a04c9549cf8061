/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The sessions PinTlsClientConnection may resume, shared by the whole
 * process. A session is filed under a key that names the server and what
 * was enforced when it was saved, and is only ever offered to a handshake
 * with the same key; it is taken out when offered, so a session is never
 * offered twice and one a handshake refused is gone. The connection still
 * checks the pins of every resumed session: the key keeps sessions apart,
 * it does not vouch for them. */

#include "pin-tls-private.h"

typedef struct
{
  GBytes *data;
  gint64 stored;      /* monotonic time */
} Session;

static GMutex cache_lock;
static GHashTable *cache; /* key -> Session */
static PinTlsClockFunc clock_func = g_get_monotonic_time;

static void
session_free (Session *session)
{
  g_bytes_unref (session->data);
  g_free (session);
}

static GHashTable *
get_cache (void)
{
  if (cache == NULL)
    cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                   (GDestroyNotify) session_free);

  return cache;
}

/* Called with the lock held: makes room by dropping what expired, or else
 * the oldest session. */
static void
make_room (GHashTable *sessions,
           gint64      now)
{
  GHashTableIter iter;
  gpointer key;
  gpointer value;
  const char *oldest_key = NULL;
  gint64 oldest = G_MAXINT64;

  g_hash_table_iter_init (&iter, sessions);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      Session *session = value;

      if (now - session->stored > PIN_TLS_SESSION_LIFETIME)
        g_hash_table_iter_remove (&iter);
      else if (session->stored < oldest)
        {
          oldest = session->stored;
          oldest_key = key;
        }
    }

  if (g_hash_table_size (sessions) >= PIN_TLS_SESSION_CACHE_SIZE
      && oldest_key != NULL)
    g_hash_table_remove (sessions, oldest_key);
}

/* The one place a key is made: the server's normalized name, its port,
 * and a digest of what the connection enforces (the pins, the trust mode
 * and where certificate authorities come from). Sessions saved under one
 * key are never offered under another. */
char *
_pin_tls_session_cache_key (const char   *server_name,
                            guint         port,
                            const guint8 *enforced_digest)
{
  g_autofree char *digest = NULL;

  digest = g_compute_checksum_for_data (G_CHECKSUM_SHA256, enforced_digest,
                                        PIN_TLS_DIGEST_SIZE);

  return g_strdup_printf ("%s:%u/%s", server_name, port, digest);
}

/* Files @data, a session as gnutls_session_get_data2() gives it, under
 * @key, in place of any session already there. */
void
_pin_tls_session_cache_store (const char *key,
                              GBytes     *data)
{
  Session *session = g_new (Session, 1);
  gint64 now;

  g_mutex_lock (&cache_lock);
  now = clock_func ();
  session->data = g_bytes_ref (data);
  session->stored = now;

  if (!g_hash_table_contains (get_cache (), key)
      && g_hash_table_size (get_cache ()) >= PIN_TLS_SESSION_CACHE_SIZE)
    make_room (get_cache (), now);
  g_hash_table_replace (get_cache (), g_strdup (key), session);
  g_mutex_unlock (&cache_lock);
}

/* Takes the session filed under @key out of the cache, if there is one
 * that has not expired. */
GBytes *
_pin_tls_session_cache_take (const char *key)
{
  GBytes *data = NULL;
  gpointer stolen_key = NULL;
  gpointer value = NULL;

  g_mutex_lock (&cache_lock);
  if (g_hash_table_steal_extended (get_cache (), key, &stolen_key, &value))
    {
      Session *session = value;

      if (clock_func () - session->stored <= PIN_TLS_SESSION_LIFETIME)
        data = g_bytes_ref (session->data);
      session_free (session);
      g_free (stolen_key);
    }
  g_mutex_unlock (&cache_lock);

  return data;
}

/* Replaces the monotonic clock sessions age by; NULL puts the real one
 * back. For tests. */
void
_pin_tls_session_cache_set_clock (PinTlsClockFunc clock)
{
  g_mutex_lock (&cache_lock);
  clock_func = clock != NULL ? clock : g_get_monotonic_time;
  g_mutex_unlock (&cache_lock);
}
