/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * New Entries (private to core/): owner, mode and inherited ACLs of an entry
 * about to be made (perm_new_entry()), shared by the namespace operations
 * (ops-name.c) and create (file.c).
 */
#include "core/core-private.h"

typedef struct NewEntry {
        mode_t mode;      /* to create it with (type bits kept) */
        LsCred owner;     /* its owner */
        void *acl, *dacl; /* ACLs to store, n_acl/n_dacl bytes (0: none) */
        size_t n_acl, n_dacl;
} NewEntry;

/* Checks that cred may make an entry in dir (for fronts that check) and
 * works out its owner, mode and ACLs; mode with its type bits. -EROFS for a
 * read-only front. */
int new_entry_prepare(CoreFront *front, const CoreCred *cred, CoreNode *dir, mode_t mode,
                      NewEntry *ne);
/* Stores the inherited ACLs on the new object. */
int new_entry_store_acls(const NewEntry *ne, LsNode *ls);
void new_entry_free(NewEntry *ne);
