/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Directory Listings: one snapshot of a directory's entries, shared by
 * every reader of every front (a libservice's readdir has no cursor to
 * resume, so a listing is read whole and paged through). A snapshot never
 * changes; each has a generation number that readers carry in their offsets
 * (FUSE) or hold as the snapshot itself (a fast-path directory stream).
 *
 * A directory keeps its current snapshot and the few before it. A reader
 * at the start takes the current one, or a new one when an entry was made
 * or removed through the core since (the directory's generation,
 * dir-state.c) or the directory's mtime or ctime moved (a change behind the
 * core's back, e.g. through another union over the same branch). A reader
 * further on asks for its own generation and reads on in that snapshot, so a
 * second reader never moves the first one (before, it made it skip entries)
 * and seekdir back to a telldir position reads the same listing again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core-private.h"

typedef struct SnapEntry {
        size_t name_off; /* into names */
        ino_t ino;
        unsigned char type;
} SnapEntry;

struct CoreDirSnap {
        atomic_uint n_refs;
        uint32_t gen;
        unsigned dir_gen; /* the directory's generation it was taken at */
        struct stat st;   /* the directory's attributes before it was read */
        SnapEntry *ents;
        size_t n_ents, cap_ents;
        char *names; /* NUL-terminated, back to back */
        size_t n_names, cap_names;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
        size_t n = *cap ? *cap : 64;
        void *q;

        if (need <= *cap)
                return 0;
        while (n < need)
                n *= 2;
        q = realloc(*p, n * elem);
        if (!q)
                return -ENOMEM;
        *p = q;
        *cap = n;
        return 0;
}

static int snap_fill(void *ctx, const char *name, ino_t ino, unsigned char d_type)
{
        CoreDirSnap *s = ctx;
        size_t len = strlen(name) + 1;

        if (grow((void **)&s->ents, &s->cap_ents, s->n_ents + 1, sizeof(*s->ents)) < 0 ||
            grow((void **)&s->names, &s->cap_names, s->n_names + len, 1) < 0)
                return -ENOMEM;
        memcpy(s->names + s->n_names, name, len);
        s->ents[s->n_ents++] = (SnapEntry){.name_off = s->n_names, .ino = ino, .type = d_type};
        s->n_names += len;
        return 0;
}

static void snap_free(CoreDirSnap *s)
{
        free(s->ents);
        free(s->names);
        free(s);
}

CoreDirSnap *core_dir_snap_ref(CoreDirSnap *snap)
{
        if (snap)
                atomic_fetch_add_explicit(&snap->n_refs, 1, memory_order_relaxed);
        return snap;
}

CoreDirSnap *core_dir_snap_unref(CoreDirSnap *snap)
{
        if (snap && atomic_fetch_sub_explicit(&snap->n_refs, 1, memory_order_acq_rel) == 1)
                snap_free(snap);
        return NULL;
}

void dir_snap_free_all(CoreDir *d)
{
        unsigned i;

        for (i = 0; i < d->n_snaps; i++)
                core_dir_snap_unref(d->snaps[i]);
        d->n_snaps = 0;
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
        return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* The kept snapshot of generation gen (gen 0: the current one if it still
 * shows the directory, whose attributes are st), with a reference. */
static CoreDirSnap *snap_find(CoreNode *dir, uint32_t gen, const struct stat *st)
{
        CoreDirSnap *s = NULL;
        unsigned i;

        pthread_mutex_lock(&dir->lock);
        if (dir->dir && gen) {
                for (i = 0; i < dir->dir->n_snaps && !s; i++)
                        if (dir->dir->snaps[i]->gen == gen)
                                s = dir->dir->snaps[i];
        } else if (dir->dir && dir->dir->n_snaps > 0) {
                s = dir->dir->snaps[0];
                if (s->dir_gen != dir->dir->gen || s->st.st_ino != st->st_ino ||
                    !same_time(&s->st.st_mtim, &st->st_mtim) ||
                    !same_time(&s->st.st_ctim, &st->st_ctim))
                        s = NULL;
        }
        core_dir_snap_ref(s);
        pthread_mutex_unlock(&dir->lock);
        return s;
}

static int snap_take(CoreNode *dir, const struct stat *st, CoreDirSnap **snapp)
{
        CoreDirSnap *s = calloc(1, sizeof(*s)), *dropped = NULL;
        CoreDir *d;
        int r;

        if (!s)
                return -ENOMEM;
        atomic_init(&s->n_refs, 1);
        s->st = *st;
        /* first: a change landing during the read makes the next reader at
         * the start take another */
        s->dir_gen = dir_gen(dir);
        /* never 0 (offset 0 means "the start"), below 2^31 */
        s->gen =
            atomic_fetch_add_explicit(&dir->core->snap_gen, 1, memory_order_relaxed) % INT32_MAX +
            1;
        r = node_ops(dir)->readdir(dir->ls, snap_fill, s);
        if (r < 0) {
                snap_free(s);
                return r;
        }
        pthread_mutex_lock(&dir->lock);
        d = node_dir(dir);
        if (d) {
                if (d->n_snaps == CORE_SNAP_MAX)
                        dropped = d->snaps[--d->n_snaps];
                memmove(d->snaps + 1, d->snaps, d->n_snaps * sizeof(*d->snaps));
                d->snaps[0] = core_dir_snap_ref(s);
                d->n_snaps++;
        }
        pthread_mutex_unlock(&dir->lock);
        core_dir_snap_unref(dropped);
        *snapp = s;
        return 0;
}

int core_dir_snap(CoreFront *front, const CoreCred *cred, CoreNode *dir, uint32_t gen,
                  CoreDirSnap **snapp)
{
        struct stat st;
        int r;

        if (gen) {
                *snapp = snap_find(dir, gen, NULL);
                return *snapp ? 0 : -ESTALE;
        }
        r = core_getattr(front, dir, &st);
        if (r >= 0 && !S_ISDIR(st.st_mode))
                r = -ENOTDIR;
        if (r >= 0 && front_checks(front))
                r = node_permission(dir, &st, cred, R_OK);
        if (r < 0)
                return r;
        *snapp = snap_find(dir, 0, &st);
        if (*snapp)
                return 0;
        return snap_take(dir, &st, snapp);
}

uint32_t core_dir_snap_gen(const CoreDirSnap *snap)
{
        return snap->gen;
}

size_t core_dir_snap_count(const CoreDirSnap *snap)
{
        return snap->n_ents;
}

const char *core_dir_snap_entry(const CoreDirSnap *snap, size_t i, ino_t *inop,
                                unsigned char *typep)
{
        if (i >= snap->n_ents)
                return NULL;
        if (inop)
                *inop = snap->ents[i].ino;
        if (typep)
                *typep = snap->ents[i].type;
        return snap->names + snap->ents[i].name_off;
}

const struct stat *core_dir_snap_stat(const CoreDirSnap *snap)
{
        return &snap->st;
}
