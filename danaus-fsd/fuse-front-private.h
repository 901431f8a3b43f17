/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Private to the FUSE front: the state every handler sees and the helpers the
 * op files share (fuse-front.c namespace ops, fuse-file.c file handles,
 * fuse-dir.c directory handles).
 */
#define FUSE_USE_VERSION 312
#include <assert.h>
#include <fuse_lowlevel.h>
#include <stdatomic.h>
#include <stddef.h>

#include "fuse-front.h"
#include "node-table.h"

struct FuseFront {
        LsInstance *inst; /* borrowed */
        const LsOps *ops;
        NodeTable *nodes;
        FrontCache cache;
        bool read_only;
        bool writeback; /* the kernel granted writeback caching at INIT */
        char *mountpoint;
        struct fuse_session *se;
        bool mounted;
        atomic_uint n_snaps; /* directory listings taken (fuse-dir.c) */
        atomic_size_t n_io;  /* io files open, the nodes' and per-request ones */
};

static inline FuseFront *req_front(fuse_req_t req)
{
        return fuse_req_userdata(req);
}

static inline Node *front_node(FuseFront *f, fuse_ino_t ino)
{
        return node_table_get(f->nodes, ino);
}

/* What a node's io slot holds: a file of the instance (fuse-file.c), or for
 * a directory its listing snapshot (fuse-dir.c), whose base this is with
 * file NULL. */
typedef struct FrontFile {
        LsFile *file;
        Node *node;
        /* the node holds one reference while this is in its io slot, each
         * request using it one more */
        atomic_uint refs;
        bool writable; /* opened read-write */
} FrontFile;

/* The node table keeps a FrontFile as its opaque NodeFile. */
static inline NodeFile *ff_node_file(FrontFile *ff)
{
        return (NodeFile *)ff;
}

static inline FrontFile *node_file_ff(NodeFile *nf)
{
        return (FrontFile *)nf;
}

/* The node's io file, held for one request; write: one opened read-write
 * (a union copies a lower file up for it, by name, or for a node whose names
 * are all gone into a nameless file). */
int front_io_get(FuseFront *f, fuse_ino_t ino, bool write, FrontFile **ffp);
/* Drops a reference taken by front_io_get() or front_io_hold(). */
void front_io_put(FuseFront *f, FrontFile *ff);
/* What node's io slot holds, with a reference, or NULL. */
FrontFile *front_io_hold(Node *node);
/* Puts ff (the caller keeps its reference) in node's io slot in place of cur
 * (held by the caller, or NULL), whose references then go; when another
 * thread changed the slot first, nothing changes but the hold on cur is
 * dropped. */
void front_io_install(FuseFront *f, Node *node, FrontFile *cur, FrontFile *ff);
/* Before the last name of the file st goes (unlink, rename over it): makes
 * sure its node, if the kernel has it, keeps an io file, so a process that
 * has it open still reaches the data. */
void front_io_pin(FuseFront *f, const struct stat *st, const char *path);
/* After the file of node ino was changed by name (setattr: a union may
 * have copied it up): a read-only io file may be a lower file that no longer
 * shows the change, so the next request opens the name again. */
void front_io_changed(FuseFront *f, fuse_ino_t ino);
/* Called by the node table with an io file it lets go of. */
void front_io_drop(NodeFile *nf, void *front);

/* Replies with a negative errno (or 0) the way FUSE wants it: positive. */
static inline void reply_err(fuse_req_t req, int r)
{
        fuse_reply_err(req, r < 0 ? -r : 0);
}

static inline LsCred req_cred(fuse_req_t req)
{
        const struct fuse_ctx *ctx = fuse_req_ctx(req);

        return (LsCred){.uid = ctx->uid, .gid = ctx->gid};
}

/* The path of node ino; -ENOENT once it has no name left. */
int front_path(FuseFront *f, fuse_ino_t ino, char path[PATH_MAX]);

/* "<parent's path>/<name>" for an entry the kernel names. */
int front_child_path(FuseFront *f, fuse_ino_t parent, const char *name, char path[PATH_MAX],
                     unsigned *seqp);

/* Registers the entry name of parent (attributes st, path as built under
 * seq) with the node table, counting one kernel lookup; rebuilds the path
 * when a directory rename raced. names_seq: parent's node_names_seq() from
 * before st was looked up, or NULL for a name just created; -ESTALE when a
 * name left parent since (look it up again). On success fills e. */
int front_enter(FuseFront *f, Node *parent, const char *name, char path[PATH_MAX], unsigned seq,
                const unsigned *names_seq, const struct stat *st, struct fuse_entry_param *e);

/* Sends e; when the kernel did not take it (request interrupted), drops the
 * lookup it counted. */
void front_reply_entry(fuse_req_t req, FuseFront *f, const struct fuse_entry_param *e);

/* Frees a directory listing (fuse-dir.c) whose last reference went. */
void front_dir_drop(FrontFile *ff);

/* File ops (fuse-file.c) and directory ops (fuse-dir.c) into the table. */
void front_file_ops(struct fuse_lowlevel_ops *ops);
void front_dir_ops(struct fuse_lowlevel_ops *ops);
