/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Private to the FUSE front: the state every handler sees and the helpers the
 * op files share (fuse-front.c namespace ops, fuse-file.c files, fuse-dir.c
 * directories, fuse-notify.c kernel invalidations).
 *
 * Node ids are CoreNode pointers (the mount's root is FUSE_ROOT_ID): only
 * the kernel hands them back, and it is trusted (the fast path uses
 * core_node_id() with a table of its own). Every reply that hands out a
 * node counts one reference of this front on it (core_lookup, core_mkdir,
 * ...), FORGET drops them, a reply the kernel did not take undoes its count.
 */
#define FUSE_USE_VERSION 312
#include <assert.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "fuse-front.h"

/* fuse-notify.c: the session's queue of kernel invalidations and the thread
 * that sends them. */
typedef struct Notifier {
        struct fuse_session *se;
        pthread_t thread;
        bool started; /* the thread was started and not joined */
        bool ready;   /* lock and conditions initialised */
        pthread_mutex_t lock;
        pthread_cond_t cond; /* work for the thread, or stop */
        pthread_cond_t done; /* a note was sent (notifier_wait) */
        struct Note *head, **tail;
        size_t n_queued;
        uint64_t n_pushed; /* sequence of the last note queued */
        uint64_t n_sent;   /* sequence of the last note sent */
        uint64_t n_notes;  /* notes sent, for logs and tests */
        bool stop;         /* the mount is going away: nothing more is queued */
} Notifier;

/* Starts the thread for session se. */
int notifier_start(Notifier *n, struct fuse_session *se);
/* Stops the thread and drops what is queued; later pushes are dropped.
 * Idempotent. */
void notifier_stop(Notifier *n);
/* After notifier_stop(), once nothing can push any more. */
void notifier_free(Notifier *n);
/* Queue an invalidation; each returns its sequence number for
 * notifier_wait() (0: dropped). Never blocks on the kernel. */
uint64_t notifier_inval_inode(Notifier *n, fuse_ino_t ino, off_t off, off_t len);
uint64_t notifier_inval_entry(Notifier *n, fuse_ino_t parent, const char *name);
uint64_t notifier_delete(Notifier *n, fuse_ino_t parent, fuse_ino_t child, const char *name);
/* Waits until note seq was sent, at most timeout_ms; true if it was. Only
 * for inode invalidations, never from a handler the kernel may hold a
 * directory lock for (see fuse-notify.c). */
bool notifier_wait(Notifier *n, uint64_t seq, unsigned timeout_ms);
uint64_t notifier_count(Notifier *n);

struct FuseFront {
        Core *core;     /* a reference */
        CoreFront *cf;  /* this front, attached to core */
        CoreNode *root; /* the mount's root: an internal reference and one of cf */
        FrontCache cache;
        bool read_only;
        bool writeback; /* the kernel granted writeback caching at INIT */
        char *mountpoint;
        struct fuse_session *se;
        bool mounted;
        Notifier notifier;
        atomic_uint_fast64_t n_requests; /* counted by req_front() */
};

/* Every handler calls this once per request (the FORGETs, READDIRs and
 * the rest): it also counts the request, for the mount's status. */
static inline FuseFront *req_front(fuse_req_t req)
{
        FuseFront *f = fuse_req_userdata(req);

        atomic_fetch_add_explicit(&f->n_requests, 1, memory_order_relaxed);
        return f;
}

static inline CoreNode *front_node(FuseFront *f, fuse_ino_t ino)
{
        return ino == FUSE_ROOT_ID ? f->root : (CoreNode *)(uintptr_t)ino;
}

static inline fuse_ino_t node_ino(FuseFront *f, CoreNode *node)
{
        return node == f->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)node;
}

/* Replies with a negative errno (or 0) the way FUSE wants it: positive. */
static inline void reply_err(fuse_req_t req, int r)
{
        fuse_reply_err(req, r < 0 ? -r : 0);
}

/* Supplementary groups fetched for one request (fuse_req_getgroups). */
#define FRONT_MAX_GROUPS 64

/* The caller's credentials. with_groups: its supplementary groups too (a
 * read of /proc: only where a set-group-ID rule needs them), into groups
 * (FRONT_MAX_GROUPS entries; more are cut). */
CoreCred front_cred(fuse_req_t req, bool with_groups, gid_t groups[FRONT_MAX_GROUPS]);

/* Fills e for node (one reference of the front counted on it) with st. */
void front_entry(FuseFront *f, CoreNode *node, const struct stat *st, struct fuse_entry_param *e);

/* Sends e; when the kernel did not take it (request interrupted), drops the
 * reference it counted. */
void front_reply_entry(fuse_req_t req, FuseFront *f, const struct fuse_entry_param *e);

/* File ops (fuse-file.c) and directory ops (fuse-dir.c) into the table. */
void front_file_ops(struct fuse_lowlevel_ops *ops);
void front_dir_ops(struct fuse_lowlevel_ops *ops);
