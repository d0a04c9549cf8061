/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Linked into the test programs of a ThreadSanitizer build only (see
* build-aux/tsan.sh). GLib is not instrumented, and on Linux its GMutex,
* GCond and g_once are built on futexes and atomics of its own, which
* ThreadSanitizer cannot see: every access that a GMutex protects would
* be reported as a race. These wrappers tell ThreadSanitizer what the
* primitives guarantee, then call GLib's own implementation, so that the
* races it reports are real ones. They wrap the calls made by pintls and
* the tests, which link the library statically; GLib's calls to itself
* stay unseen, and build-aux/tsan.supp says how those are handled. */

#define _GNU_SOURCE

#include <dlfcn.h>
#include <glib-object.h>

void __tsan_acquire (void *address);
void __tsan_release (void *address);

/* GLib's own implementation of @name. */
static gpointer
real (const char *name)
{
  gpointer function = dlsym (RTLD_NEXT, name);

  g_assert (function != NULL);
  return function;
}

void
g_mutex_lock (GMutex *mutex)
{
  static void (*real_lock) (GMutex *);

  if (real_lock == NULL)
    real_lock = real ("g_mutex_lock");

  real_lock (mutex);
  __tsan_acquire (mutex);
}

gboolean
g_mutex_trylock (GMutex *mutex)
{
  static gboolean (*real_trylock) (GMutex *);
  gboolean locked;

  if (real_trylock == NULL)
    real_trylock = real ("g_mutex_trylock");

  locked = real_trylock (mutex);
  if (locked)
    __tsan_acquire (mutex);

  return locked;
}

void
g_mutex_unlock (GMutex *mutex)
{
  static void (*real_unlock) (GMutex *);

  if (real_unlock == NULL)
    real_unlock = real ("g_mutex_unlock");

  __tsan_release (mutex);
  real_unlock (mutex);
}

void
g_cond_wait (GCond  *cond,
             GMutex *mutex)
{
  static void (*real_wait) (GCond *,
                            GMutex *);

  if (real_wait == NULL)
    real_wait = real ("g_cond_wait");

  __tsan_release (mutex);
  real_wait (cond, mutex);
  __tsan_acquire (mutex);
}

gboolean
g_cond_wait_until (GCond  *cond,
                   GMutex *mutex,
                   gint64  end_time)
{
  static gboolean (*real_wait_until) (GCond *,
                                      GMutex *,
                                      gint64);
  gboolean signalled;

  if (real_wait_until == NULL)
    real_wait_until = real ("g_cond_wait_until");

  __tsan_release (mutex);
  signalled = real_wait_until (cond, mutex, end_time);
  __tsan_acquire (mutex);

  return signalled;
}

gboolean (g_once_init_enter) (volatile void *location)
{
  static gboolean (*real_enter) (volatile void *);
  gboolean initialize;

  if (real_enter == NULL)
    real_enter = real ("g_once_init_enter");

  initialize = real_enter (location);
  if (!initialize)
    __tsan_acquire ((void *) location);

  return initialize;
}

void (g_once_init_leave) (volatile void *location, gsize result)
{
  static void (*real_leave) (volatile void *,
                             gsize);

  if (real_leave == NULL)
    real_leave = real ("g_once_init_leave");

  __tsan_release ((void *) location);
  real_leave (location, result);
}
