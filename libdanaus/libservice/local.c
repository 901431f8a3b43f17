/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Local libservice: a host directory as the backend root. One instance per
 * pool; branches are handles (LocalNode) inside it.
 *
 * Handles. A LocalNode names one host object for life. Its identity is
 * (st_dev, kernel file handle type + bytes) from name_to_handle_at(2); the
 * handle bytes carry the inode generation, so an inode number freed and
 * reused names a new object and gets a new node. On a filesystem without
 * file handles (EOPNOTSUPP, e.g. procfs) the key is (st_dev, st_ino) and the
 * node keeps its O_PATH fd for life: the inode cannot be freed, hence its
 * number not reused, while we hold it.
 *
 * Table. Live nodes sit in a table of LOCAL_SHARDS shards, each a chained
 * hash table under its own mutex; the shard lock is held only to search and
 * insert, never across a system call. A hit takes a reference with
 * ls_node_tryref(); a node whose count already reached 0 is being freed:
 * the lookup inserts a new node in front of it, and node_free() removes only
 * its own entry (by pointer). So two lookups of one object give the same
 * pointer, and hard links of one file give one handle.
 *
 * fds. Every node has an O_PATH fd while it is "open"; all operations use it
 * (fstat, *at(fd, "", AT_EMPTY_PATH), or "/proc/self/fd/N", which the kernel
 * resolves to the object itself, never following it further: xattrs of a
 * symlink act on the symlink). At most `budget` of those fds are held
 * (default: a quarter of RLIMIT_NOFILE's soft limit at local_new(); see
 * local_set_fd_budget()). Past it, least-recently-used fds are closed by a
 * clock sweep (each use sets a "used" bit; the sweep clears it and evicts
 * nodes found clear), and reopened on next use with
 * open_by_handle_at(mount fd of the node's st_dev, handle, O_PATH). That
 * needs CAP_DAC_READ_SEARCH: local_new() tries it once on the root, and
 * without it nothing is ever evicted. Never evicted: nodes without a file
 * handle, nodes on a filesystem we hold no mount fd for, and files with no
 * name left (st_nlink 0: reopening by handle would fail with ESTALE, the
 * object would be lost); an unlink, rmdir or replacing rename through this
 * instance pins the fd of the victim's live node first. An fd in use is
 * never closed under its user: users count themselves in `users` before
 * reading `fd`, the evictor swaps `fd` to -1 before reading `users` and puts
 * it back if it saw one (both sequentially consistent: Dekker's pattern).
 *
 * Measured (test "fd-budget-cost", -O2, ext4 on a shared 2-core VM, 6.18
 * kernel, 2000 held handles, medians of 5 runs): getattr on a held handle
 * 1.5 us with its fd kept, 4.0 us when it must be reopened by handle (and
 * another fd closed); lookup+getattr 5.7 us with fds kept, 6.0 us at a
 * budget of 16 (a lookup opens the name and hands that fd to an evicted
 * node), 5.7 us for a name without a live handle. A reopen costs ~2.6x a
 * kept fd, and an fd costs the kernel only a struct file (a few hundred
 * bytes), so the default budget is generous: a quarter of the soft fd limit
 * when the instance is made (5000 of this machine's 20000); the sweep only
 * matters for trees far larger than the working set.
 *
 * Mounts. Branches may sit on different filesystems under the root (mount
 * points inside it). Identity keys include st_dev, and a node is reopened
 * with a mount fd of its own st_dev (one O_RDONLY directory fd per st_dev,
 * taken from the first directory seen on it; the list only grows). readdir
 * reports a mount point's root inode number (what getattr says) once the
 * instance knows there are mounts below its root.
 *
 * Confinement. Every object is reached from the root by one-name *at()
 * steps (names checked with ls_name_valid()) with O_NOFOLLOW /
 * AT_SYMLINK_NOFOLLOW, from a node's own fd: no "..", no symlink, no magic
 * link leaves the root, whatever the tree holds. open() of a symlink node is
 * -ELOOP. Handles only ever come from objects so reached.
 *
 * New entries (mknod, mkdir, symlink, create, tmpfile) are made with a mode
 * only we can use (0600/0700), then chowned to the caller's ids (with
 * CAP_CHOWN), then chmodded to the exact mode: set-ID bits survive the
 * chown, the host's set-group-ID directory inheritance does not leak through
 * (the caller decided gid and mode), and no other user reaches the entry
 * before it has its final owner and mode.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "libservice/local.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

#define LOCAL_SHARDS     64
#define LOCAL_HANDLE_MAX MAX_HANDLE_SZ
/* Key type for filesystems without file handles: (st_dev, st_ino). */
#define LOCAL_KEY_INO (-1)
#define PROC_FD_MAX   32

/* Flags open() passes through. */
#define LOCAL_OPEN_FLAGS                                                                           \
        (O_ACCMODE | O_APPEND | O_TRUNC | O_DIRECT | O_SYNC | O_DSYNC | O_NOATIME | O_NONBLOCK)

typedef struct LocalNode LocalNode;

typedef struct LocalMount {
        struct LocalMount *next;
        dev_t dev;
        int fd; /* O_RDONLY directory on that filesystem: open_by_handle_at's mount_fd */
} LocalMount;

typedef struct LocalShard {
        pthread_mutex_t mu;
        LocalNode **buckets;
        size_t n_buckets, n_nodes;
} LocalShard;

typedef struct Local {
        LsInstance base;
        int root_fd; /* O_PATH */
        dev_t root_dev;
        bool read_only;
        bool chown_ok;         /* CAP_CHOWN: new entries get the caller's ids */
        bool can_evict;        /* open_by_handle_at works (CAP_DAC_READ_SEARCH) */
        atomic_bool submounts; /* mounts below the root: readdir stats directories */
        LocalShard shards[LOCAL_SHARDS];

        _Atomic(LocalMount *) mounts; /* append-only; published with release */
        pthread_mutex_t mounts_mu;

        /* The clock ring of evictable nodes holding an fd. */
        pthread_mutex_t lru_mu;
        LocalNode *hand;     /* protected by lru_mu */
        atomic_size_t n_fds; /* nodes in the ring */
        atomic_size_t budget;
} Local;

struct LocalNode {
        LsNode base;
        LocalNode *hnext; /* shard chain, protected by the shard's mu */
        uint64_t hash;
        dev_t dev;
        ino_t ino;
        mode_t type;              /* S_IFMT bits */
        bool evictable;           /* has a handle, a mount fd for dev, and l->can_evict */
        atomic_bool pinned;       /* never evict again (no name left) */
        atomic_bool used;         /* clock bit */
        atomic_int fd;            /* O_PATH, or -1 while evicted */
        atomic_uint users;        /* threads between node_fd_get() and node_fd_put() */
        pthread_mutex_t mu;       /* serialises reopen and eviction of fd */
        LocalNode *lprev, *lnext; /* clock ring, protected by l->lru_mu */
        bool in_ring;             /* protected by l->lru_mu */
        int key_type;
        unsigned key_len;
        unsigned char key[];
};

typedef struct LocalFile {
        LsFile base;
        int fd;
} LocalFile;

typedef struct LocalKey {
        dev_t dev;
        int type;
        unsigned len;
        unsigned char bytes[LOCAL_HANDLE_MAX];
} LocalKey;

static const LsOps local_ops;

static inline Local *to_local(LsInstance *inst)
{
        return (Local *)inst;
}

static inline LocalNode *to_node(LsNode *node)
{
        return (LocalNode *)node;
}

static inline Local *node_local(LocalNode *n)
{
        return to_local(n->base.inst);
}

static inline LocalFile *to_file(LsFile *file)
{
        return (LocalFile *)file;
}

static int errno_or(int r)
{
        return r < 0 ? -errno : r;
}

static void proc_path(char buf[PROC_FD_MAX], int fd)
{
        snprintf(buf, PROC_FD_MAX, "/proc/self/fd/%d", fd);
}

/* ---- keys and the table ---- */

static uint64_t key_hash(const LocalKey *k)
{
        uint64_t h = 0xcbf29ce484222325ull;
        uint64_t dev = k->dev;

        for (int i = 0; i < 8; i++, dev >>= 8)
                h = (h ^ (dev & 0xff)) * 0x100000001b3ull;
        h = (h ^ (uint32_t)k->type) * 0x100000001b3ull;
        for (unsigned i = 0; i < k->len; i++)
                h = (h ^ k->bytes[i]) * 0x100000001b3ull;
        return h ^ (h >> 29);
}

static bool key_match(const LocalNode *n, const LocalKey *k, uint64_t hash)
{
        return n->hash == hash && n->dev == k->dev && n->key_type == k->type &&
               n->key_len == k->len && memcmp(n->key, k->bytes, k->len) == 0;
}

/* The identity of the object fd (O_PATH) refers to; st from fstat(fd). */
static int key_of_fd(int fd, const struct stat *st, LocalKey *k)
{
        struct {
                struct file_handle fh;
                unsigned char bytes[LOCAL_HANDLE_MAX];
        } h;
        int mnt;

        k->dev = st->st_dev;
        h.fh.handle_bytes = LOCAL_HANDLE_MAX;
        if (name_to_handle_at(fd, "", &h.fh, &mnt, AT_EMPTY_PATH) == 0) {
                k->type = h.fh.handle_type;
                k->len = h.fh.handle_bytes;
                memcpy(k->bytes, h.fh.f_handle, k->len);
                return 0;
        }
        if (errno != EOPNOTSUPP && errno != EOVERFLOW)
                return -errno;
        k->type = LOCAL_KEY_INO;
        k->len = sizeof(st->st_ino);
        memcpy(k->bytes, &st->st_ino, sizeof(st->st_ino));
        return 0;
}

static LocalShard *shard_of(Local *l, uint64_t hash)
{
        return &l->shards[hash % LOCAL_SHARDS];
}

static size_t bucket_of(const LocalShard *s, uint64_t hash)
{
        return (hash / LOCAL_SHARDS) & (s->n_buckets - 1);
}

/* With s->mu held. */
static void shard_grow(LocalShard *s)
{
        size_t n = s->n_buckets ? s->n_buckets * 2 : 16;
        LocalNode **b = calloc(n, sizeof(*b));
        size_t old = s->n_buckets;
        LocalNode **ob = s->buckets;

        if (!b)
                return; /* longer chains, still correct */
        s->buckets = b;
        s->n_buckets = n;
        for (size_t i = 0; i < old; i++) {
                LocalNode *x = ob[i];

                while (x) {
                        LocalNode *next = x->hnext;
                        size_t j = bucket_of(s, x->hash);

                        x->hnext = b[j];
                        b[j] = x;
                        x = next;
                }
        }
        free(ob);
}

/* A live node with that key, with a new reference, or NULL. With s->mu. */
static LocalNode *shard_find(LocalShard *s, const LocalKey *k, uint64_t hash)
{
        if (!s->n_buckets)
                return NULL;
        for (LocalNode *x = s->buckets[bucket_of(s, hash)]; x; x = x->hnext)
                if (key_match(x, k, hash) && ls_node_tryref(&x->base))
                        return x;
        return NULL;
}

static LocalNode *table_find(Local *l, const LocalKey *k)
{
        uint64_t hash = key_hash(k);
        LocalShard *s = shard_of(l, hash);
        LocalNode *n;

        pthread_mutex_lock(&s->mu);
        n = shard_find(s, k, hash);
        pthread_mutex_unlock(&s->mu);
        return n;
}

/* ---- mount fds ---- */

static int mount_fd_of(Local *l, dev_t dev)
{
        for (LocalMount *m = atomic_load_explicit(&l->mounts, memory_order_acquire); m; m = m->next)
                if (m->dev == dev)
                        return m->fd;
        return -1;
}

/* Records a mount fd for dev from directory fd (O_PATH). */
static int mount_add(Local *l, dev_t dev, int dirfd)
{
        char proc[PROC_FD_MAX];
        LocalMount *m;
        int fd;

        pthread_mutex_lock(&l->mounts_mu);
        fd = mount_fd_of(l, dev);
        if (fd >= 0)
                goto out;
        proc_path(proc, dirfd);
        fd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                fd = -errno;
                goto out;
        }
        m = malloc(sizeof(*m));
        if (!m) {
                close(fd);
                fd = -ENOMEM;
                goto out;
        }
        m->dev = dev;
        m->fd = fd;
        m->next = atomic_load_explicit(&l->mounts, memory_order_relaxed);
        /* Pairs with the acquire in mount_fd_of(): m is complete before seen. */
        atomic_store_explicit(&l->mounts, m, memory_order_release);
out:
        pthread_mutex_unlock(&l->mounts_mu);
        return fd;
}

/* ---- the clock ring and the fd budget ---- */

/* With l->lru_mu. */
static void ring_insert(Local *l, LocalNode *n)
{
        if (n->in_ring)
                return;
        if (!l->hand) {
                n->lprev = n->lnext = n;
                l->hand = n;
        } else {
                /* Just behind the hand: the last the sweep reaches. */
                n->lnext = l->hand;
                n->lprev = l->hand->lprev;
                n->lprev->lnext = n;
                l->hand->lprev = n;
        }
        n->in_ring = true;
        atomic_fetch_add(&l->n_fds, 1);
}

/* With l->lru_mu. */
static void ring_remove(Local *l, LocalNode *n)
{
        if (!n->in_ring)
                return;
        if (n->lnext == n) {
                l->hand = NULL;
        } else {
                n->lprev->lnext = n->lnext;
                n->lnext->lprev = n->lprev;
                if (l->hand == n)
                        l->hand = n->lnext;
        }
        n->lprev = n->lnext = NULL;
        n->in_ring = false;
        atomic_fetch_sub(&l->n_fds, 1);
}

/* Takes n's fd away if nobody uses it and it may go; returns it for the
 * caller to close after dropping l->lru_mu, or -1. With l->lru_mu. */
static int try_evict(Local *l, LocalNode *n)
{
        struct stat st;
        int fd = -1;

        if (atomic_load(&n->pinned) || pthread_mutex_trylock(&n->mu) != 0)
                return -1;
        if (atomic_load(&n->fd) < 0)
                goto out;
        /* A file with no name left cannot be reopened by handle. */
        if (fstat(atomic_load(&n->fd), &st) < 0 || st.st_nlink == 0) {
                atomic_store(&n->pinned, true);
                ring_remove(l, n);
                goto out;
        }
        /* Dekker with node_fd_get(): swap first, then look for users. */
        fd = atomic_exchange(&n->fd, -1);
        if (atomic_load(&n->users) != 0) {
                atomic_store(&n->fd, fd);
                fd = -1;
                goto out;
        }
        ring_remove(l, n);
out:
        pthread_mutex_unlock(&n->mu);
        return fd;
}

/* Evicts until the ring fits the budget (or nothing more can go). Past the
 * budget it goes down to 15/16 of it, so the sweep (and its lock) runs once
 * per budget/16 new fds, not for each; fds are closed outside the lock. */
static void enforce_budget(Local *l)
{
        size_t budget = atomic_load(&l->budget);
        size_t target = budget >= 32 ? budget - budget / 16 : budget;
        int victims[64];
        size_t nv;

        if (atomic_load(&l->n_fds) <= budget)
                return;
        do {
                nv = 0;
                pthread_mutex_lock(&l->lru_mu);
                for (size_t steps = 2 * atomic_load(&l->n_fds) + 2;
                     atomic_load(&l->n_fds) > target && l->hand && steps > 0 &&
                     nv < sizeof(victims) / sizeof(victims[0]);
                     steps--) {
                        LocalNode *n = l->hand;
                        int fd;

                        l->hand = n->lnext;
                        if (atomic_exchange(&n->used, false))
                                continue;
                        fd = try_evict(l, n);
                        if (fd >= 0)
                                victims[nv++] = fd;
                }
                pthread_mutex_unlock(&l->lru_mu);
                for (size_t i = 0; i < nv; i++)
                        close(victims[i]);
        } while (nv == sizeof(victims) / sizeof(victims[0]) && atomic_load(&l->n_fds) > target);
}

/* Puts fd (O_PATH, of n's object) into n if it has none; else closes it. */
static void node_adopt_fd(LocalNode *n, int fd)
{
        Local *l = node_local(n);
        bool adopted = false;

        if (atomic_load(&n->fd) >= 0) {
                close(fd);
                return;
        }
        pthread_mutex_lock(&n->mu);
        if (atomic_load(&n->fd) < 0) {
                atomic_store(&n->fd, fd);
                atomic_store(&n->used, true);
                pthread_mutex_lock(&l->lru_mu);
                ring_insert(l, n);
                pthread_mutex_unlock(&l->lru_mu);
                adopted = true;
        }
        pthread_mutex_unlock(&n->mu);
        if (!adopted)
                close(fd);
        else
                enforce_budget(l);
}

/* n's O_PATH fd, reopened by handle if evicted; node_fd_put() after use. */
static int node_fd_get(LocalNode *n)
{
        Local *l = node_local(n);
        struct {
                struct file_handle fh;
                unsigned char bytes[LOCAL_HANDLE_MAX];
        } h;
        int fd;

        atomic_fetch_add(&n->users, 1);
        fd = atomic_load(&n->fd);
        if (fd >= 0) {
                if (!atomic_load_explicit(&n->used, memory_order_relaxed))
                        atomic_store_explicit(&n->used, true, memory_order_relaxed);
                return fd;
        }
        pthread_mutex_lock(&n->mu);
        fd = atomic_load(&n->fd);
        if (fd < 0) {
                h.fh.handle_type = n->key_type;
                h.fh.handle_bytes = n->key_len;
                memcpy(h.fh.f_handle, n->key, n->key_len);
                fd = open_by_handle_at(mount_fd_of(l, n->dev), &h.fh, O_PATH | O_CLOEXEC);
                if (fd < 0) {
                        fd = -errno;
                        pthread_mutex_unlock(&n->mu);
                        atomic_fetch_sub(&n->users, 1);
                        return fd;
                }
                atomic_store(&n->fd, fd);
                atomic_store(&n->used, true);
                pthread_mutex_lock(&l->lru_mu);
                ring_insert(l, n);
                pthread_mutex_unlock(&l->lru_mu);
        }
        pthread_mutex_unlock(&n->mu);
        enforce_budget(l);
        return fd;
}

static void node_fd_put(LocalNode *n)
{
        atomic_fetch_sub(&n->users, 1);
}

/* Keeps n's fd for the node's life (its last name is about to go). */
static void node_pin(LocalNode *n)
{
        Local *l = node_local(n);
        int fd;

        if (!n->evictable || atomic_load(&n->pinned))
                return;
        fd = node_fd_get(n);
        if (fd < 0)
                return;
        pthread_mutex_lock(&n->mu);
        atomic_store(&n->pinned, true);
        pthread_mutex_lock(&l->lru_mu);
        ring_remove(l, n);
        pthread_mutex_unlock(&l->lru_mu);
        pthread_mutex_unlock(&n->mu);
        node_fd_put(n);
}

/* The live node of dir/name found without opening it (fstatat for st_dev,
 * name_to_handle_at for the key), or NULL. A rename between the two calls is
 * caught by comparing the node's inode number with the stat's: either way the
 * node returned is an object that had the name at one of the two instants.
 * (lookup() opens the name instead: measured, fstatat + name_to_handle_at +
 * a table miss + open costs more than open + fstat + name_to_handle_at, and a
 * hit saves little.) */
static LocalNode *lookup_live(Local *l, int dirfd, const char *name, struct stat *st)
{
        struct {
                struct file_handle fh;
                unsigned char bytes[LOCAL_HANDLE_MAX];
        } h;
        LocalNode *n;
        LocalKey k = {.len = 0};
        int mnt;

        if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
                return NULL;
        k.dev = st->st_dev;
        h.fh.handle_bytes = LOCAL_HANDLE_MAX;
        if (name_to_handle_at(dirfd, name, &h.fh, &mnt, 0) == 0) {
                k.type = h.fh.handle_type;
                k.len = h.fh.handle_bytes;
                memcpy(k.bytes, h.fh.f_handle, k.len);
        } else if (errno == EOPNOTSUPP || errno == EOVERFLOW) {
                k.type = LOCAL_KEY_INO;
                k.len = sizeof(st->st_ino);
                memcpy(k.bytes, &st->st_ino, sizeof(st->st_ino));
        } else {
                return NULL;
        }
        n = table_find(l, &k);
        if (n && n->ino != st->st_ino) {
                ls_node_unref(&n->base);
                n = NULL;
        }
        return n;
}

/* Before an operation removes dir/name: pins the fd of its live node when
 * that may be its last name. */
static void pin_victim(Local *l, int dirfd, const char *name)
{
        struct stat st;
        LocalNode *n;

        if (!l->can_evict)
                return;
        n = lookup_live(l, dirfd, name, &st);
        if (!n)
                return;
        if (S_ISDIR(st.st_mode) || st.st_nlink <= 1)
                node_pin(n);
        ls_node_unref(&n->base);
}

/* ---- nodes ---- */

/* The node of the object fd (O_PATH) refers to; consumes fd. st: fstat(fd)
 * or NULL. */
static int node_get(Local *l, int fd, const struct stat *stin, LocalNode **np, struct stat *stp)
{
        struct stat st;
        LocalNode *n, *found;
        LocalShard *s;
        uint64_t hash;
        LocalKey k = {.len = 0};
        int r;

        if (stin)
                st = *stin;
        else if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        r = key_of_fd(fd, &st, &k);
        if (r < 0) {
                close(fd);
                return r;
        }
        if (stp)
                *stp = st;
        n = table_find(l, &k);
        if (n) {
                node_adopt_fd(n, fd);
                *np = n;
                return 0;
        }
        if (st.st_dev != l->root_dev && !atomic_load(&l->submounts))
                atomic_store(&l->submounts, true);
        if (S_ISDIR(st.st_mode) && mount_fd_of(l, st.st_dev) < 0)
                mount_add(l, st.st_dev, fd);
        n = calloc(1, sizeof(*n) + k.len);
        if (!n) {
                close(fd);
                return -ENOMEM;
        }
        ls_node_init(&n->base, &l->base);
        pthread_mutex_init(&n->mu, NULL);
        n->dev = st.st_dev;
        n->ino = st.st_ino;
        n->type = st.st_mode & S_IFMT;
        n->key_type = k.type;
        n->key_len = k.len;
        memcpy(n->key, k.bytes, k.len);
        n->hash = hash = key_hash(&k);
        n->evictable = l->can_evict && k.type != LOCAL_KEY_INO && mount_fd_of(l, st.st_dev) >= 0;
        atomic_init(&n->fd, fd);
        atomic_init(&n->used, true);
        atomic_init(&n->users, 0);
        atomic_init(&n->pinned, !n->evictable || st.st_nlink == 0);

        s = shard_of(l, hash);
        pthread_mutex_lock(&s->mu);
        found = shard_find(s, &k, hash);
        if (!found) {
                if (s->n_nodes >= s->n_buckets)
                        shard_grow(s);
                if (s->n_buckets) {
                        size_t b = bucket_of(s, hash);

                        n->hnext = s->buckets[b];
                        s->buckets[b] = n;
                        s->n_nodes++;
                } else {
                        found = NULL;
                }
        }
        pthread_mutex_unlock(&s->mu);
        if (found || !s->n_buckets) {
                /* Lost a race to another lookup (or no memory for a bucket):
                 * n never became visible. */
                close(fd);
                pthread_mutex_destroy(&n->mu);
                ls_instance_unref(n->base.inst);
                free(n);
                if (!found)
                        return -ENOMEM;
                *np = found;
                return 0;
        }
        if (!atomic_load(&n->pinned)) {
                pthread_mutex_lock(&l->lru_mu);
                ring_insert(l, n);
                pthread_mutex_unlock(&l->lru_mu);
                enforce_budget(l);
        }
        *np = n;
        return 0;
}

static void local_node_free(LsNode *node)
{
        LocalNode *n = to_node(node);
        Local *l = node_local(n);
        LocalShard *s = shard_of(l, n->hash);
        int fd;

        pthread_mutex_lock(&s->mu);
        for (LocalNode **pp = &s->buckets[bucket_of(s, n->hash)]; *pp; pp = &(*pp)->hnext)
                if (*pp == n) {
                        *pp = n->hnext;
                        s->n_nodes--;
                        break;
                }
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&l->lru_mu);
        ring_remove(l, n);
        pthread_mutex_unlock(&l->lru_mu);
        /* Nobody else can reach n now: an evictor held lru_mu to see it. */
        fd = atomic_load(&n->fd);
        if (fd >= 0)
                close(fd);
        pthread_mutex_destroy(&n->mu);
        ls_instance_unref(n->base.inst);
        free(n);
}

/* Opens dir/name (not following it) and returns its node. */
static int node_at(LocalNode *dir, int dirfd, const char *name, LocalNode **np, struct stat *stp)
{
        int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        return node_get(node_local(dir), fd, NULL, np, stp);
}

/* ---- namespace ---- */

static int local_root(LsInstance *inst, LsNode **nodep)
{
        Local *l = to_local(inst);
        LocalNode *n;
        int fd, r;

        fd = openat(l->root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = node_get(l, fd, NULL, &n, NULL);
        if (r == 0)
                *nodep = &n->base;
        return r;
}

static int local_lookup(LsNode *dirn, const char *name, LsNode **nodep, struct stat *stp)
{
        LocalNode *dir = to_node(dirn), *n;
        int dirfd, r;

        if (!ls_name_valid(name))
                return name && strnlen(name, NAME_MAX + 1) > NAME_MAX ? -ENAMETOOLONG : -EINVAL;
        if (dir->type != S_IFDIR)
                return -ENOTDIR;
        dirfd = node_fd_get(dir);
        if (dirfd < 0)
                return dirfd;
        r = node_at(dir, dirfd, name, &n, stp);
        node_fd_put(dir);
        if (r == 0)
                *nodep = &n->base;
        return r;
}

static int check_name(const char *name)
{
        if (ls_name_valid(name))
                return 0;
        return name && strnlen(name, NAME_MAX + 1) > NAME_MAX ? -ENAMETOOLONG : -EINVAL;
}

/* Common checks of a namespace op on dir; returns dir's fd (node_fd_put()). */
static int dir_begin(LocalNode *dir, const char *name, bool modify)
{
        int r;

        if (modify && node_local(dir)->read_only)
                return -EROFS;
        r = check_name(name);
        if (r < 0)
                return r;
        if (dir->type != S_IFDIR)
                return -ENOTDIR;
        return node_fd_get(dir);
}

/* Chmod of the object fd (O_PATH) refers to. */
static int fd_chmod(int fd, mode_t mode)
{
        char proc[PROC_FD_MAX];
        struct stat st;

        if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0)
                return 0;
        if (errno != ENOSYS)
                return -errno;
        /* Before Linux 6.6: chmod through the magic link, which reaches the
         * object itself; a symlink's mode is not ours to change (as
         * fchmodat2 and glibc's lchmod say). */
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode))
                return -EOPNOTSUPP;
        proc_path(proc, fd);
        return errno_or(chmod(proc, mode));
}

/* Gives a new entry (fd: O_PATH or open) its final owner, then its mode. */
static int finish_new(Local *l, int fd, mode_t type, mode_t mode, const LsCred *cred)
{
        if (cred && l->chown_ok &&
            fchownat(fd, "", cred->uid, cred->gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (type == S_IFLNK)
                return 0;
        return fd_chmod(fd, mode & 07777);
}

/* Opens the entry we just created as dir/name and checks it is still ours
 * as created (uid, restrictive mode, type): a concurrent rename could have
 * put another object there. */
static int open_new(int dirfd, const char *name, mode_t type, mode_t tmpmode, struct stat *st)
{
        int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (fstat(fd, st) < 0 || (st->st_mode & S_IFMT) != type || st->st_uid != geteuid() ||
            (type != S_IFLNK && (st->st_mode & 07777 & ~tmpmode) != 0)) {
                close(fd);
                return -EAGAIN;
        }
        return fd;
}

/* The node of a new entry fd; stp gets its attributes after finishing. */
/* Removes dir/name if it still names the object of fd (a new entry that
 * could not be finished). */
static void remove_unfinished(int dirfd, const char *name, int fd)
{
        struct stat st, at;

        if (fstat(fd, &st) == 0 && fstatat(dirfd, name, &at, AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_dev == at.st_dev && st.st_ino == at.st_ino)
                unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
}

/* Finishes the new entry dir/name (fd: O_PATH of it) and returns its node;
 * stp gets its attributes after finishing. */
static int new_node(Local *l, int dirfd, const char *name, int fd, mode_t type, mode_t mode,
                    const LsCred *cred, LsNode **nodep, struct stat *stp)
{
        LocalNode *n;
        int r;

        r = finish_new(l, fd, type, mode, cred);
        if (r < 0) {
                remove_unfinished(dirfd, name, fd);
                close(fd);
                return r;
        }
        r = node_get(l, fd, NULL, &n, stp);
        if (r == 0)
                *nodep = &n->base;
        return r;
}

static int local_mknod(LsNode *dirn, const char *name, mode_t mode, dev_t rdev, const LsCred *cred,
                       LsNode **nodep, struct stat *stp)
{
        LocalNode *dir = to_node(dirn);
        Local *l = node_local(dir);
        mode_t type = mode & S_IFMT;
        struct stat st;
        int dirfd, fd, r;

        if (type == 0)
                type = S_IFREG;
        if (type != S_IFREG && type != S_IFCHR && type != S_IFBLK && type != S_IFIFO &&
            type != S_IFSOCK)
                return -EINVAL;
        dirfd = dir_begin(dir, name, true);
        if (dirfd < 0)
                return dirfd;
        r = errno_or(mknodat(dirfd, name, type | 0600, rdev));
        if (r == 0) {
                fd = open_new(dirfd, name, type, 0600, &st);
                r = fd < 0 ? fd : new_node(l, dirfd, name, fd, type, mode, cred, nodep, stp);
        }
        node_fd_put(dir);
        return r;
}

static int local_mkdir(LsNode *dirn, const char *name, mode_t mode, const LsCred *cred,
                       LsNode **nodep, struct stat *stp)
{
        LocalNode *dir = to_node(dirn);
        Local *l = node_local(dir);
        struct stat st;
        int dirfd, fd, r;

        dirfd = dir_begin(dir, name, true);
        if (dirfd < 0)
                return dirfd;
        r = errno_or(mkdirat(dirfd, name, 0700));
        if (r == 0) {
                fd = open_new(dirfd, name, S_IFDIR, 0700 | S_ISGID, &st);
                r = fd < 0 ? fd : new_node(l, dirfd, name, fd, S_IFDIR, mode, cred, nodep, stp);
        }
        node_fd_put(dir);
        return r;
}

static int local_symlink(LsNode *dirn, const char *name, const char *target, const LsCred *cred,
                         LsNode **nodep, struct stat *stp)
{
        LocalNode *dir = to_node(dirn);
        Local *l = node_local(dir);
        struct stat st;
        int dirfd, fd, r;

        if (!target || !*target)
                return -ENOENT;
        dirfd = dir_begin(dir, name, true);
        if (dirfd < 0)
                return dirfd;
        r = errno_or(symlinkat(target, dirfd, name));
        if (r == 0) {
                fd = open_new(dirfd, name, S_IFLNK, 0777, &st);
                r = fd < 0 ? fd : new_node(l, dirfd, name, fd, S_IFLNK, 0777, cred, nodep, stp);
        }
        node_fd_put(dir);
        return r;
}

static int local_link(LsNode *node, LsNode *newdirn, const char *newname, struct stat *stp)
{
        LocalNode *n = to_node(node), *newdir = to_node(newdirn);
        char proc[PROC_FD_MAX];
        int fd, dirfd, r;

        if (n->type == S_IFDIR)
                return node_local(n)->read_only ? -EROFS : -EPERM;
        dirfd = dir_begin(newdir, newname, true);
        if (dirfd < 0)
                return dirfd;
        fd = node_fd_get(n);
        if (fd < 0) {
                node_fd_put(newdir);
                return fd;
        }
        r = linkat(fd, "", dirfd, newname, AT_EMPTY_PATH);
        if (r < 0 && errno == ENOENT) {
                /* Without CAP_DAC_READ_SEARCH: through the magic link. */
                proc_path(proc, fd);
                r = linkat(AT_FDCWD, proc, dirfd, newname, AT_SYMLINK_FOLLOW);
        }
        r = errno_or(r);
        if (r == 0 && stp)
                r = errno_or(fstat(fd, stp));
        node_fd_put(n);
        node_fd_put(newdir);
        return r;
}

static int remove_entry(LsNode *dirn, const char *name, int flags)
{
        LocalNode *dir = to_node(dirn);
        int dirfd, r;

        dirfd = dir_begin(dir, name, true);
        if (dirfd < 0)
                return dirfd;
        pin_victim(node_local(dir), dirfd, name);
        r = errno_or(unlinkat(dirfd, name, flags));
        node_fd_put(dir);
        return r;
}

static int local_unlink(LsNode *dir, const char *name)
{
        return remove_entry(dir, name, 0);
}

static int local_rmdir(LsNode *dir, const char *name)
{
        return remove_entry(dir, name, AT_REMOVEDIR);
}

static int local_rename(LsNode *olddirn, const char *oldname, LsNode *newdirn, const char *newname,
                        unsigned int flags)
{
        LocalNode *olddir = to_node(olddirn), *newdir = to_node(newdirn);
        int oldfd, newfd, r;

        if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
                return -EINVAL;
        oldfd = dir_begin(olddir, oldname, true);
        if (oldfd < 0)
                return oldfd;
        newfd = dir_begin(newdir, newname, true);
        if (newfd < 0) {
                node_fd_put(olddir);
                return newfd;
        }
        if (!(flags & (RENAME_NOREPLACE | RENAME_EXCHANGE)))
                pin_victim(node_local(newdir), newfd, newname);
        r = errno_or(renameat2(oldfd, oldname, newfd, newname, flags));
        node_fd_put(newdir);
        node_fd_put(olddir);
        return r;
}

/* ---- attributes and xattrs ---- */

static int local_getattr(LsNode *node, struct stat *st)
{
        LocalNode *n = to_node(node);
        int fd = node_fd_get(n), r;

        if (fd < 0)
                return fd;
        r = errno_or(fstat(fd, st));
        node_fd_put(n);
        return r;
}

static int setattr_fd(LocalNode *n, int fd, const LsSetattr *sa)
{
        char proc[PROC_FD_MAX];
        unsigned v = sa->valid;

        if (v & (LS_SET_UID | LS_SET_GID)) {
                uid_t uid = (v & LS_SET_UID) ? sa->uid : (uid_t)-1;
                gid_t gid = (v & LS_SET_GID) ? sa->gid : (gid_t)-1;

                if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
        }
        if (v & LS_SET_MODE) {
                int r = fd_chmod(fd, sa->mode & 07777);

                if (r < 0)
                        return r;
        }
        if (v & LS_SET_SIZE) {
                if (n->type == S_IFDIR)
                        return -EISDIR;
                if (n->type != S_IFREG)
                        return -EINVAL;
                proc_path(proc, fd);
                if (truncate(proc, sa->size) < 0)
                        return -errno;
        }
        if (v & (LS_SET_ATIME | LS_SET_MTIME | LS_SET_ATIME_NOW | LS_SET_MTIME_NOW)) {
                struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};

                if (v & LS_SET_ATIME_NOW)
                        ts[0].tv_nsec = UTIME_NOW;
                else if (v & LS_SET_ATIME)
                        ts[0] = sa->atime;
                if (v & LS_SET_MTIME_NOW)
                        ts[1].tv_nsec = UTIME_NOW;
                else if (v & LS_SET_MTIME)
                        ts[1] = sa->mtime;
                if (utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
        }
        return 0;
}

static int local_setattr(LsNode *node, const LsSetattr *sa, struct stat *stp)
{
        LocalNode *n = to_node(node);
        int fd, r;

        if (node_local(n)->read_only)
                return -EROFS;
        fd = node_fd_get(n);
        if (fd < 0)
                return fd;
        r = setattr_fd(n, fd, sa);
        if (r == 0 && stp)
                r = errno_or(fstat(fd, stp));
        node_fd_put(n);
        return r;
}

static ssize_t local_readlink(LsNode *node, char *buf, size_t size)
{
        LocalNode *n = to_node(node);
        ssize_t len;
        int fd;

        if (n->type != S_IFLNK)
                return -EINVAL;
        fd = node_fd_get(n);
        if (fd < 0)
                return fd;
        len = readlinkat(fd, "", buf, size);
        node_fd_put(n);
        return len < 0 ? -errno : len;
}

/* xattrs go through "/proc/self/fd/N": the kernel resolves it to the
 * object itself (a symlink too, without following it). */
static int local_setxattr(LsNode *node, const char *name, const void *value, size_t size, int flags)
{
        LocalNode *n = to_node(node);
        char proc[PROC_FD_MAX];
        int fd, r;

        if (node_local(n)->read_only)
                return -EROFS;
        fd = node_fd_get(n);
        if (fd < 0)
                return fd;
        proc_path(proc, fd);
        r = errno_or(setxattr(proc, name, value, size, flags));
        node_fd_put(n);
        return r;
}

static ssize_t local_getxattr(LsNode *node, const char *name, void *value, size_t size)
{
        LocalNode *n = to_node(node);
        char proc[PROC_FD_MAX];
        ssize_t len;
        int fd;

        fd = node_fd_get(n);
        if (fd < 0)
                return fd;
        proc_path(proc, fd);
        len = getxattr(proc, name, value, size);
        node_fd_put(n);
        return len < 0 ? -errno : len;
}

static ssize_t local_listxattr(LsNode *node, char *list, size_t size)
{
        LocalNode *n = to_node(node);
        char proc[PROC_FD_MAX];
        ssize_t len;
        int fd;

        fd = node_fd_get(n);
        if (fd < 0)
                return fd;
        proc_path(proc, fd);
        len = listxattr(proc, list, size);
        node_fd_put(n);
        return len < 0 ? -errno : len;
}

static int local_removexattr(LsNode *node, const char *name)
{
        LocalNode *n = to_node(node);
        char proc[PROC_FD_MAX];
        int fd, r;

        if (node_local(n)->read_only)
                return -EROFS;
        fd = node_fd_get(n);
        if (fd < 0)
                return fd;
        proc_path(proc, fd);
        r = errno_or(removexattr(proc, name));
        node_fd_put(n);
        return r;
}

static int local_statfs(LsNode *node, struct statvfs *st)
{
        LocalNode *n = to_node(node);
        int fd = node_fd_get(n), r;

        if (fd < 0)
                return fd;
        r = errno_or(fstatvfs(fd, st));
        node_fd_put(n);
        if (r == 0 && node_local(n)->read_only)
                st->f_flag |= ST_RDONLY;
        return r;
}

/* Reopens n's object through its magic link with flags. */
static int reopen(LocalNode *n, int flags)
{
        char proc[PROC_FD_MAX];
        int fd = node_fd_get(n), r;

        if (fd < 0)
                return fd;
        proc_path(proc, fd);
        r = open(proc, flags | O_CLOEXEC);
        r = r < 0 ? -errno : r;
        node_fd_put(n);
        return r;
}

static int local_readdir(LsNode *dirn, LsFillDir fill, void *ctx)
{
        LocalNode *dir = to_node(dirn);
        Local *l = node_local(dir);
        struct dirent *de;
        DIR *d;
        int fd, r = 0;

        if (dir->type != S_IFDIR)
                return -ENOTDIR;
        fd = reopen(dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        for (;;) {
                ino_t ino;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        r = errno ? -errno : 0;
                        break;
                }
                if (de->d_name[0] == '.' &&
                    (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
                        continue;
                ino = de->d_ino;
                if (atomic_load_explicit(&l->submounts, memory_order_relaxed) &&
                    (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN)) {
                        /* A mount point: getattr reports the mounted root. */
                        struct stat st;

                        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                                ino = st.st_ino;
                }
                r = fill(ctx, de->d_name, ino, de->d_type);
                if (r)
                        break;
        }
        closedir(d);
        return r;
}

static int local_fsyncdir(LsNode *dirn, bool datasync)
{
        LocalNode *dir = to_node(dirn);
        int fd, r;

        if (dir->type != S_IFDIR)
                return -ENOTDIR;
        fd = reopen(dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd;
        r = errno_or(datasync ? fdatasync(fd) : fsync(fd));
        close(fd);
        return r;
}

/* ---- files ---- */

static int file_new(LocalNode *n, int fd, int flags, LsFile **filep)
{
        LocalFile *f = calloc(1, sizeof(*f));

        if (!f) {
                close(fd);
                return -ENOMEM;
        }
        ls_file_init(&f->base, &n->base, flags);
        f->fd = fd;
        *filep = &f->base;
        return 0;
}

static bool flags_modify(int flags)
{
        return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/* The flags open() uses: LS_O_NOCOPYUP resolved, the rest filtered. */
static int open_flags(Local *l, int flags)
{
        if (flags & LS_O_NOCOPYUP)
                flags = (flags & ~(O_ACCMODE | LS_O_NOCOPYUP)) | (l->read_only ? O_RDONLY : O_RDWR);
        return flags & LOCAL_OPEN_FLAGS;
}

static int local_open(LsNode *node, int flags, LsFile **filep)
{
        LocalNode *n = to_node(node);
        Local *l = node_local(n);
        bool nocopyup = flags & LS_O_NOCOPYUP;
        int fd;

        flags = open_flags(l, flags);
        if (nocopyup && n->type == S_IFDIR)
                flags = (flags & ~(O_ACCMODE | O_TRUNC)) | O_RDONLY;
        if (l->read_only && flags_modify(flags))
                return -EROFS;
        if (n->type == S_IFLNK)
                return -ELOOP;
        if (n->type == S_IFDIR && flags_modify(flags))
                return -EISDIR;
        fd = reopen(n, flags);
        if (nocopyup && (flags & O_ACCMODE) != O_RDONLY &&
            (fd == -EACCES || fd == -EPERM || fd == -EROFS || fd == -ETXTBSY)) {
                /* not writable: read-only, as LS_O_NOCOPYUP promises */
                flags = (flags & ~(O_ACCMODE | O_TRUNC)) | O_RDONLY;
                fd = reopen(n, flags);
        }
        if (fd < 0)
                return fd;
        return file_new(n, fd, flags, filep);
}

/* Adds O_DIRECT to an open fd when flags ask for it. */
static int set_direct(int fd, int flags)
{
        int fl;

        if (!(flags & O_DIRECT))
                return 0;
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) < 0)
                return -errno;
        return 0;
}

/* Creates dir/name exclusively with the restrictive mode; returns the open
 * fd, finished (owner, mode), or -errno. */
static int create_new(Local *l, int dirfd, const char *name, int flags, mode_t mode,
                      const LsCred *cred)
{
        int fd, r;

        /* O_DIRECT only once the file is finished: a filesystem that refuses
         * it fails the open after creating the file. */
        fd = openat(dirfd, name,
                    (flags & ~(O_TRUNC | O_DIRECT)) | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
        if (fd < 0)
                return -errno;
        r = finish_new(l, fd, S_IFREG, mode, cred);
        if (r < 0) {
                remove_unfinished(dirfd, name, fd);
                close(fd);
                return r;
        }
        r = set_direct(fd, flags);
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

/* Opens the existing entry dir/name (pfd: O_PATH of it) as create() without
 * O_EXCL would: never through a symlink, never a directory. */
static int open_existing(int pfd, int flags)
{
        char proc[PROC_FD_MAX];
        struct stat st;
        int fd;

        if (fstat(pfd, &st) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode))
                return -ELOOP;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        proc_path(proc, pfd);
        fd = open(proc, flags | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static int local_create(LsNode *dirn, const char *name, int flags, mode_t mode, const LsCred *cred,
                        LsNode **nodep, struct stat *stp, LsFile **filep)
{
        LocalNode *dir = to_node(dirn), *n = NULL;
        Local *l = node_local(dir);
        char proc[PROC_FD_MAX];
        bool excl = flags & O_EXCL;
        int dirfd, fd = -EEXIST, pfd = -1, r;

        flags = open_flags(l, flags);
        dirfd = dir_begin(dir, name, true);
        if (dirfd < 0)
                return dirfd;
        /* Without O_EXCL, a name that appears between our open and our
         * create is opened on the next round. */
        for (int round = 0; round < 8 && fd == -EEXIST; round++) {
                if (!excl) {
                        pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                        if (pfd >= 0) {
                                fd = open_existing(pfd, flags);
                                break;
                        }
                        if (errno != ENOENT) {
                                fd = -errno;
                                break;
                        }
                }
                fd = create_new(l, dirfd, name, flags, mode, cred);
                if (excl)
                        break;
        }
        node_fd_put(dir);
        if (fd < 0) {
                if (pfd >= 0)
                        close(pfd);
                return fd;
        }
        if (pfd < 0) {
                proc_path(proc, fd);
                pfd = open(proc, O_PATH | O_CLOEXEC);
                if (pfd < 0) {
                        r = -errno;
                        close(fd);
                        return r;
                }
        }
        r = node_get(l, pfd, NULL, &n, stp);
        if (r < 0) {
                close(fd);
                return r;
        }
        r = file_new(n, fd, flags, filep);
        if (r < 0) {
                ls_node_unref(&n->base);
                return r;
        }
        /* file_new took its own reference; the caller gets ours. */
        *nodep = &n->base;
        return 0;
}

static int local_tmpfile(LsNode *dirn, int flags, mode_t mode, const LsCred *cred, LsNode **nodep,
                         struct stat *stp, LsFile **filep)
{
        LocalNode *dir = to_node(dirn), *n;
        Local *l = node_local(dir);
        char proc[PROC_FD_MAX];
        int dirfd, fd, pfd, r;

        if (l->read_only)
                return -EROFS;
        if (dir->type != S_IFDIR)
                return -ENOTDIR;
        flags = open_flags(l, flags);
        if ((flags & O_ACCMODE) == O_RDONLY)
                flags = (flags & ~O_ACCMODE) | O_RDWR;
        dirfd = node_fd_get(dir);
        if (dirfd < 0)
                return dirfd;
        fd = openat(dirfd, ".", (flags & ~(O_TRUNC | O_DIRECT)) | O_TMPFILE | O_CLOEXEC, 0600);
        r = fd < 0 ? -errno : 0;
        node_fd_put(dir);
        if (r < 0)
                return r;
        r = finish_new(l, fd, S_IFREG, mode, cred);
        if (r == 0)
                r = set_direct(fd, flags);
        if (r == 0) {
                proc_path(proc, fd);
                pfd = open(proc, O_PATH | O_CLOEXEC);
                r = pfd < 0 ? -errno : node_get(l, pfd, NULL, &n, stp);
        }
        if (r < 0) {
                close(fd);
                return r;
        }
        r = file_new(n, fd, flags, filep);
        if (r < 0) {
                ls_node_unref(&n->base);
                return r;
        }
        *nodep = &n->base;
        return 0;
}

static ssize_t local_pread(LsFile *file, void *buf, size_t size, off_t off)
{
        ssize_t n = pread(to_file(file)->fd, buf, size, off);

        return n < 0 ? -errno : n;
}

static ssize_t local_pwrite(LsFile *file, const void *buf, size_t size, off_t off, int rwf)
{
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = size};
        ssize_t n;

        if (rwf & ~(RWF_APPEND | RWF_SYNC | RWF_DSYNC))
                return -EINVAL;
        n = rwf ? pwritev2(to_file(file)->fd, &iov, 1, (rwf & RWF_APPEND) ? -1 : off, rwf)
                : pwrite(to_file(file)->fd, buf, size, off);
        return n < 0 ? -errno : n;
}

static int local_fsync(LsFile *file, bool datasync)
{
        int fd = to_file(file)->fd;

        return errno_or(datasync ? fdatasync(fd) : fsync(fd));
}

static int local_fallocate(LsFile *file, int mode, off_t off, off_t len)
{
        return errno_or(fallocate(to_file(file)->fd, mode, off, len));
}

static off_t local_lseek(LsFile *file, off_t off, int whence)
{
        off_t r;

        if (whence != SEEK_DATA && whence != SEEK_HOLE)
                return -EINVAL;
        r = lseek(to_file(file)->fd, off, whence);
        return r < 0 ? -errno : r;
}

static int local_file_fd(LsFile *file)
{
        return to_file(file)->fd;
}

static int local_release(LsFile *file)
{
        LocalFile *f = to_file(file);
        int r = errno_or(close(f->fd));

        ls_file_deinit(&f->base);
        free(f);
        return r;
}

/* ---- the instance ---- */

static void local_destroy(LsInstance *inst)
{
        Local *l = to_local(inst);
        LocalMount *m = atomic_load(&l->mounts);

        while (m) {
                LocalMount *next = m->next;

                close(m->fd);
                free(m);
                m = next;
        }
        for (int i = 0; i < LOCAL_SHARDS; i++) {
                free(l->shards[i].buckets);
                pthread_mutex_destroy(&l->shards[i].mu);
        }
        pthread_mutex_destroy(&l->mounts_mu);
        pthread_mutex_destroy(&l->lru_mu);
        close(l->root_fd);
        free(l);
}

static const LsOps local_ops = {
    .name = "local",
    .destroy = local_destroy,
    .node_free = local_node_free,
    .root = local_root,
    .lookup = local_lookup,
    .mknod = local_mknod,
    .mkdir = local_mkdir,
    .symlink = local_symlink,
    .link = local_link,
    .unlink = local_unlink,
    .rmdir = local_rmdir,
    .rename = local_rename,
    .getattr = local_getattr,
    .setattr = local_setattr,
    .readlink = local_readlink,
    .setxattr = local_setxattr,
    .getxattr = local_getxattr,
    .listxattr = local_listxattr,
    .removexattr = local_removexattr,
    .statfs = local_statfs,
    .readdir = local_readdir,
    .fsyncdir = local_fsyncdir,
    .open = local_open,
    .create = local_create,
    .tmpfile = local_tmpfile,
    .pread = local_pread,
    .pwrite = local_pwrite,
    .fsync = local_fsync,
    .fallocate = local_fallocate,
    .lseek = local_lseek,
    .file_fd = local_file_fd,
    .release = local_release,
};

/* Whether this process has capability cap in its effective set. */
static bool has_cap(int cap)
{
        struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {0};

        if (syscall(SYS_capget, &hdr, data) < 0)
                return false;
        return data[cap / 32].effective & (1u << (cap % 32));
}

/* Whether a mount lies strictly below the directory fd (O_PATH): then
 * readdir must stat directories to report mounted roots' numbers. */
static bool has_submounts(int fd)
{
        char proc[PROC_FD_MAX], dir[PATH_MAX], *line = NULL;
        size_t len = 0, dlen;
        bool found = false;
        ssize_t n;
        FILE *f;

        proc_path(proc, fd);
        n = readlink(proc, dir, sizeof(dir) - 1);
        if (n <= 0)
                return true; /* unknown: be exact, pay a stat per directory */
        dir[n] = '\0';
        dlen = strcmp(dir, "/") == 0 ? 0 : (size_t)n;
        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return true;
        while (!found && getline(&line, &len, f) > 0) {
                char mp[PATH_MAX];
                size_t m = 0;
                const char *p = line;

                /* fields: id parent major:minor root mount-point ... */
                for (int field = 0; field < 4 && p; field++) {
                        p = strchr(p, ' ');
                        p = p ? p + 1 : NULL;
                }
                if (!p)
                        continue;
                for (; *p && *p != ' ' && m < sizeof(mp) - 1; p++) {
                        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] && p[3]) {
                                mp[m++] =
                                    (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
                                p += 3;
                        } else {
                                mp[m++] = *p;
                        }
                }
                mp[m] = '\0';
                found = m > dlen + 1 && strncmp(mp, dir, dlen) == 0 && mp[dlen] == '/';
        }
        free(line);
        fclose(f);
        return found;
}

/* Whether handles of the root's filesystem can be reopened here (which
 * takes CAP_DAC_READ_SEARCH). */
static bool probe_reopen(int mount_fd, int root_fd)
{
        struct {
                struct file_handle fh;
                unsigned char bytes[LOCAL_HANDLE_MAX];
        } h;
        int mnt, fd;

        h.fh.handle_bytes = LOCAL_HANDLE_MAX;
        if (name_to_handle_at(root_fd, "", &h.fh, &mnt, AT_EMPTY_PATH) < 0)
                /* No handles on the root's fs; other filesystems below may
                 * have them, and the capability is what matters. */
                return errno == EOPNOTSUPP;
        fd = open_by_handle_at(mount_fd, &h.fh, O_PATH | O_CLOEXEC);
        if (fd < 0)
                return false;
        close(fd);
        return true;
}

void local_set_fd_budget(LsInstance *inst, size_t budget)
{
        Local *l = to_local(inst);

        atomic_store(&l->budget, budget ? budget : 1);
        enforce_budget(l);
}

int local_new(const char *root, bool read_only, LsInstance **instp)
{
        struct rlimit rl;
        struct stat st;
        Local *l;
        int fd, r;

        fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        l = calloc(1, sizeof(*l));
        if (!l) {
                close(fd);
                return -ENOMEM;
        }
        ls_instance_init(&l->base, &local_ops);
        l->root_fd = fd;
        l->root_dev = st.st_dev;
        l->read_only = read_only;
        l->chown_ok = has_cap(CAP_CHOWN);
        for (int i = 0; i < LOCAL_SHARDS; i++)
                pthread_mutex_init(&l->shards[i].mu, NULL);
        pthread_mutex_init(&l->mounts_mu, NULL);
        pthread_mutex_init(&l->lru_mu, NULL);
        atomic_init(&l->mounts, NULL);
        atomic_init(&l->n_fds, 0);
        r = mount_add(l, st.st_dev, fd);
        if (r < 0) {
                local_destroy(&l->base);
                return r;
        }
        l->can_evict = has_cap(CAP_DAC_READ_SEARCH) && probe_reopen(r, fd);
        atomic_store(&l->submounts, has_submounts(fd));
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
                atomic_init(&l->budget, rl.rlim_cur / 4 > 16 ? rl.rlim_cur / 4 : 16);
        else
                atomic_init(&l->budget, 4096);
        *instp = &l->base;
        return 0;
}
