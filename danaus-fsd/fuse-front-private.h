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
        /* Handles the kernel has not released: they leak if the connection
         * is aborted, and the count says so in the log. */
        atomic_size_t n_open;
};

static inline FuseFront *req_front(fuse_req_t req)
{
        return fuse_req_userdata(req);
}

static inline Node *front_node(FuseFront *f, fuse_ino_t ino)
{
        return node_table_get(f->nodes, ino);
}

/* What fh points to: the instance's file (NULL for a directory handle,
 * which embeds this) and its place among the node's open handles. */
typedef struct FrontFile {
        NodeFile link; /* first: node_file_call() hands it back */
        LsFile *file;
        Node *node;
} FrontFile;
static_assert(offsetof(FrontFile, link) == 0, "a NodeFile is its FrontFile");

static inline FrontFile *fi_front_file(const struct fuse_file_info *fi)
{
        return (FrontFile *)(uintptr_t)fi->fh;
}

static inline LsFile *fi_file(const struct fuse_file_info *fi)
{
        return fi_front_file(fi)->file;
}

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
 * when a directory rename raced. On success fills e. */
int front_enter(FuseFront *f, Node *parent, const char *name, char path[PATH_MAX], unsigned seq,
                const struct stat *st, struct fuse_entry_param *e);

/* Sends e; when the kernel did not take it (request interrupted), drops the
 * lookup it counted. */
void front_reply_entry(fuse_req_t req, FuseFront *f, const struct fuse_entry_param *e);

/* Frees a directory handle (fuse-dir.c), for handles never released. */
void front_dir_drop(FrontFile *ff);

/* File ops (fuse-file.c) and directory ops (fuse-dir.c) into the table. */
void front_file_ops(struct fuse_lowlevel_ops *ops);
void front_dir_ops(struct fuse_lowlevel_ops *ops);
