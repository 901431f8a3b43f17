/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE Notifier: the kernel invalidations of one session, sent by one
 * thread of their own.
 *
 * The core reports every change to every front (attributes, data, names);
 * this front turns each into fuse_lowlevel_notify_inval_inode(),
 * _inval_entry() or _delete(). None of them may be sent from a request
 * handler: an entry invalidation takes the parent directory's inode lock,
 * which the kernel holds while it waits for the reply to a LOOKUP, CREATE,
 * MKDIR, UNLINK, RENAME... of that directory, and an inode invalidation
 * writes the dirty pages back first (WRITE requests that need free
 * workers). So handlers queue them here (notifier_push(), never blocking)
 * and this thread sends them in order.
 *
 * A handler that needs an invalidation done before it replies (the pages
 * an O_DIRECT write made stale) waits for that one inode invalidation with
 * notifier_wait(), bounded: no handler ever waits for an entry invalidation,
 * so the only thing the thread can wait for is the kernel's writeback of
 * dirty pages through the other workers.
 *
 * Node ids in the queue are not held: an invalidation of an id the kernel
 * no longer has fails with ENOENT, and one that reaches another node now
 * behind the same id only costs that node a fresh lookup.
 *
 * When the mount goes away (notifier_stop()) whatever is still queued is
 * dropped: the kernel's caches go with the mount.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuse-front-private.h"
#include "util/log.h"

typedef enum NoteKind {
        NOTE_INODE,
        NOTE_ENTRY,
        NOTE_DELETE,
} NoteKind;

typedef struct Note {
        struct Note *next;
        NoteKind kind;
        uint64_t seq;
        fuse_ino_t ino;   /* NOTE_INODE: the node; else the parent */
        fuse_ino_t child; /* NOTE_DELETE */
        off_t off, len;   /* NOTE_INODE */
        size_t namelen;
        char name[]; /* NOTE_ENTRY, NOTE_DELETE; NUL-terminated */
} Note;

/* Queued notes past which a warning is logged (once per crossing). */
#define NOTIFIER_WARN_QUEUE 65536

static void *notifier_main(void *userdata)
{
        Notifier *n = userdata;

        pthread_mutex_lock(&n->lock);
        for (;;) {
                Note *note;
                int r;

                while (!n->head && !n->stop)
                        pthread_cond_wait(&n->cond, &n->lock);
                if (n->stop)
                        break;
                note = n->head;
                n->head = note->next;
                if (!n->head)
                        n->tail = &n->head;
                n->n_queued--;
                pthread_mutex_unlock(&n->lock);

                switch (note->kind) {
                case NOTE_INODE:
                        r = fuse_lowlevel_notify_inval_inode(n->se, note->ino, note->off,
                                                             note->len);
                        break;
                case NOTE_ENTRY:
                        r = fuse_lowlevel_notify_inval_entry(n->se, note->ino, note->name,
                                                             note->namelen);
                        break;
                default:
                        r = fuse_lowlevel_notify_delete(n->se, note->ino, note->child, note->name,
                                                        note->namelen);
                        break;
                }
                /* ENOENT: the kernel has no such node or entry (nothing
                 * cached); ENOTDIR/ENOTEMPTY/EBUSY: delete of an entry that
                 * changed meanwhile, which the kernel then just dropped. */
                if (r < 0 && r != -ENOENT && r != -ENOTDIR && r != -ENOTEMPTY && r != -EBUSY)
                        log_debug("notify %d on node %#llx failed: %s", (int)note->kind,
                                  (unsigned long long)note->ino, strerror(-r));

                pthread_mutex_lock(&n->lock);
                n->n_sent = note->seq;
                n->n_notes++;
                pthread_cond_broadcast(&n->done);
                free(note);
        }
        pthread_mutex_unlock(&n->lock);
        return NULL;
}

int notifier_start(Notifier *n, struct fuse_session *se)
{
        pthread_condattr_t ca;
        sigset_t all, old;
        int r;

        *n = (Notifier){.se = se};
        n->tail = &n->head;
        pthread_mutex_init(&n->lock, NULL);
        pthread_cond_init(&n->cond, NULL);
        /* notifier_wait() bounds its wait on the monotonic clock */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&n->done, &ca);
        pthread_condattr_destroy(&ca);
        n->ready = true;
        /* no signal is ever delivered to this thread */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&n->thread, NULL, notifier_main, n);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                n->stop = true; /* pushes are dropped */
                return r;
        }
        n->started = true;
        return 0;
}

void notifier_stop(Notifier *n)
{
        Note *note, *list;

        if (!n->ready)
                return;
        pthread_mutex_lock(&n->lock);
        n->stop = true;
        list = n->head;
        n->head = NULL;
        n->tail = &n->head;
        n->n_queued = 0;
        pthread_cond_signal(&n->cond);
        pthread_cond_broadcast(&n->done);
        pthread_mutex_unlock(&n->lock);
        while ((note = list)) {
                list = note->next;
                free(note);
        }
        if (n->started) {
                pthread_join(n->thread, NULL);
                n->started = false;
        }
}

void notifier_free(Notifier *n)
{
        if (!n->ready)
                return;
        notifier_stop(n);
        pthread_cond_destroy(&n->done);
        pthread_cond_destroy(&n->cond);
        pthread_mutex_destroy(&n->lock);
        n->ready = false;
}

/* Queues note; returns its sequence number (0: dropped, the mount going
 * away or no memory). */
static uint64_t notifier_push(Notifier *n, Note *note)
{
        uint64_t seq = 0;

        pthread_mutex_lock(&n->lock);
        if (!n->stop) {
                note->seq = seq = ++n->n_pushed;
                note->next = NULL;
                *n->tail = note;
                n->tail = &note->next;
                if (++n->n_queued == NOTIFIER_WARN_QUEUE)
                        log_warning("%zu kernel invalidations queued", n->n_queued);
                pthread_cond_signal(&n->cond);
                note = NULL;
        }
        pthread_mutex_unlock(&n->lock);
        free(note);
        return seq;
}

uint64_t notifier_inval_inode(Notifier *n, fuse_ino_t ino, off_t off, off_t len)
{
        Note *note;

        if (!n->ready)
                return 0;
        note = calloc(1, sizeof(*note));
        if (!note) {
                log_error("no memory for a kernel invalidation");
                return 0;
        }
        note->kind = NOTE_INODE;
        note->ino = ino;
        note->off = off;
        note->len = len;
        return notifier_push(n, note);
}

static uint64_t push_name(Notifier *n, NoteKind kind, fuse_ino_t parent, fuse_ino_t child,
                          const char *name)
{
        size_t len = strlen(name);
        Note *note;

        if (!n->ready)
                return 0;
        note = calloc(1, sizeof(*note) + len + 1);
        if (!note) {
                log_error("no memory for a kernel invalidation");
                return 0;
        }
        note->kind = kind;
        note->ino = parent;
        note->child = child;
        note->namelen = len;
        memcpy(note->name, name, len + 1);
        return notifier_push(n, note);
}

uint64_t notifier_inval_entry(Notifier *n, fuse_ino_t parent, const char *name)
{
        return push_name(n, NOTE_ENTRY, parent, 0, name);
}

uint64_t notifier_delete(Notifier *n, fuse_ino_t parent, fuse_ino_t child, const char *name)
{
        return push_name(n, NOTE_DELETE, parent, child, name);
}

bool notifier_wait(Notifier *n, uint64_t seq, unsigned timeout_ms)
{
        struct timespec until;
        bool done;

        if (seq == 0 || !n->ready)
                return seq == 0;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&n->lock);
        while (n->n_sent < seq && !n->stop)
                if (pthread_cond_timedwait(&n->done, &n->lock, &until) == ETIMEDOUT)
                        break;
        done = n->n_sent >= seq;
        pthread_mutex_unlock(&n->lock);
        return done;
}

uint64_t notifier_count(Notifier *n)
{
        uint64_t c;

        if (!n->ready)
                return 0;
        pthread_mutex_lock(&n->lock);
        c = n->n_notes;
        pthread_mutex_unlock(&n->lock);
        return c;
}
