/* text_int.h: what the files of text/ share and nothing else includes. */
#ifndef TEXT_INT_H
#define TEXT_INT_H

#include "sstext.h"

/* Undo a partial append: the public functions leave out as it was when they fail. */
static inline int text__rollback(struct ss_buf *out, size_t len0, int rc)
{
    if (rc && out->data) {
        out->len = len0;
        out->data[len0] = '\0';
    }
    return rc;
}

#endif
