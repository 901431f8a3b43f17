/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Node table: FUSE node ids <-> the files of one instance.
 *
 * A node id is the address of a Node (the kernel is trusted to hand back only
 * ids we gave it); FUSE_ROOT_ID is the root. Nodes are keyed by the (st_dev,
 * st_ino) the instance reports, so hard links share one node, and each keeps
 * the path(s) under which it was last seen (a few for hard links; the first
 * is the one used). The kernel's lookup count decides the node's life: every
 * entry reply adds one, forget takes them away, the node is freed at 0.
 *
 * Locks: the table is split into shards by key, each with its own mutex
 * (no global lock on the hot path); a node's paths have their own mutex,
 * always taken after the shard's. Directory renames, which must rewrite the
 * paths of every cached descendant, walk all shards; they are serialised
 * among themselves and publish a sequence count so a concurrent lookup that
 * built its path from a stale parent path retries.
 */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

typedef struct Node Node;
typedef struct NodeTable NodeTable;

int node_table_new(NodeTable **tablep);
NodeTable *node_table_free(NodeTable *t);

/* The node behind a FUSE node id (the root for FUSE_ROOT_ID). */
Node *node_table_get(NodeTable *t, uint64_t nodeid);
uint64_t node_table_id(NodeTable *t, Node *n);

/* True if st is the file of node n (same key). */
bool node_is(const Node *n, const struct stat *st);

/* Copies the node's current path into buf (PATH_MAX). Returns its length, or
 * -ENOENT when the node has no name left (unlinked while open). */
int node_path(Node *n, char buf[PATH_MAX]);

/* Builds "<parent's path>/<name>" into buf and returns in *seqp the rename
 * sequence it was built under, for node_table_lookup_in(). */
int node_child_path(NodeTable *t, Node *parent, const char *name, char buf[PATH_MAX],
                    unsigned *seqp);

#define NODE_SEQ_ANY UINT32_MAX

/* A name leaving directory dir (unlink, rmdir, rename) bumps a count of dir
 * (one of a few, by the name's hash) before the table forgets the name. A
 * lookup that read the count before it looked the name up passes it to
 * node_table_lookup_in(), which refuses (-ESTALE) to record the name if it
 * may have left meanwhile: a kernel revalidating a name runs without the
 * directory lock, so it can race with the removal. */
unsigned node_names_seq(Node *dir, const char *name);
void node_names_changed(Node *dir, const char *name);
/* Any entry made or removed in directory dir bumps this one, after the
 * change: a listing taken at an older count may be out of date. */
unsigned node_listing_gen(Node *dir);
void node_listing_changed(Node *dir);
/* Finds or creates the node for st, records path (name in directory dir) as
 * its first name and counts one kernel lookup. Counting nothing, returns
 * -EAGAIN when a directory rename ran since seq was taken (rebuild the path
 * and call again), unless seq is NODE_SEQ_ANY, and -ESTALE when name left
 * dir since names_seq (dir NULL: not checked). */
int node_table_lookup_in(NodeTable *t, const struct stat *st, const char *path, unsigned seq,
                         Node *dir, const char *name, unsigned names_seq, Node **nodep);

/* Drops n kernel lookups; frees the node when none is left. */
void node_table_forget(NodeTable *t, Node *n, uint64_t nlookup);

/* The last attributes of a directory whose last name was removed while the
 * kernel still has it (an fd on it may fstat it): kept until the node goes
 * or gets a name again. */
void node_set_gone_attr(Node *n, const struct stat *st);
bool node_gone_attr(Node *n, struct stat *st);

/* Node n's name path turned out to hold nothing or another file: forget it. */
void node_drop_path(Node *n, const char *path);

/* The entry path (whose file was st) is gone: forget that name. */
void node_table_unlinked(NodeTable *t, const struct stat *st, const char *path);

/* One rename as the front sees it: src is what oldpath named, dst what newpath
 * named before (NULL if nothing), flags as renameat2(2). */
typedef struct NodeRename {
        const char *oldpath, *newpath;
        const struct stat *src, *dst;
        unsigned int flags;
        bool dirs; /* set by begin: a directory moves, descendants need fixing */
} NodeRename;

/* Bracket the instance's rename with these two. begin() holds lookups that
 * would build paths under a moving directory; end() fixes the cached paths
 * when done is true. */
void node_table_rename_begin(NodeTable *t, NodeRename *rn);
void node_table_rename_end(NodeTable *t, NodeRename *rn, bool done);

/* What a node's io slot holds: the front's (fuse-front-private.h), opaque
 * here. */
typedef struct NodeFile NodeFile;

/* Runs fn on the node's io file, under the node's lock (so it cannot be
 * released meanwhile); -ENOENT when it has none. An open file whose last
 * name is gone can still be stat'ed that way: fstat(2) reaches FUSE without
 * a handle. */
int node_io_call(Node *n, int (*fn)(NodeFile *nf, void *ctx), void *ctx);

/* The node's io file: in no-open mode (the kernel sends no OPEN or RELEASE
 * for files) every request on a node shares one file of the instance, which
 * the front keeps here. hold() is called
 * on it under the node's lock, so it cannot be dropped meanwhile. */
NodeFile *node_io_hold(Node *n, void (*hold)(NodeFile *nf));
/* Makes nf (NULL: none) the node's io file if the current one is still
 * expect (NULL: none) and unlinks expect, whose reference the caller then
 * drops; false, changing nothing, when another thread got there first. */
bool node_io_replace(Node *n, NodeFile *expect, NodeFile *nf);
/* Called with a node's io file when the table lets go of it: the node is
 * freed, or its number is looked up again after all its names were gone
 * (another file may have the number now). Runs without table locks held. */
void node_table_set_io_drop(NodeTable *t, void (*drop)(NodeFile *nf, void *ctx), void *ctx);

/* Counts one more lookup on the node keyed by st, if there is one, so it
 * outlives a call that races with forget; node_table_forget(t, n, 1) undoes. */
Node *node_table_hold(NodeTable *t, const struct stat *st);

/* Takes every node's io file off it and hands it to fn, when the session
 * ends (the kernel will never forget those nodes now). No other thread may
 * use the table meanwhile. */
void node_table_drain_io(NodeTable *t, void (*fn)(NodeFile *nf, void *ctx), void *ctx);

/* Number of cached nodes (root excluded); for logs and tests. */
size_t node_table_count(NodeTable *t);
