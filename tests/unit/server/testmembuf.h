/* testmembuf.h - a growing memory buffer as a ds_sink_fn, for the suites
 * that write an export or a zip into memory and read it back (datasets,
 * datasets_zip).  Zero it before use; fail_at makes the sink refuse a write
 * that would reach past that many bytes, to test a refusing sink.  Static
 * functions: included by each suite that needs them. */
#ifndef PRECURSOR_TESTMEMBUF_H
#define PRECURSOR_TESTMEMBUF_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct membuf {
    uint8_t *p;
    size_t len, cap;
    size_t fail_at;             /* refuse a write reaching past this (0: never) */
};

static int mem_sink(void *ctx, const void *buf, size_t len)
{
    struct membuf *m = ctx;

    if (m->fail_at && m->len + len > m->fail_at)
        return -1;
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->p = realloc(m->p, m->cap);
        ck_assert_ptr_nonnull(m->p);
    }
    memcpy(m->p + m->len, buf, len);
    m->len += len;
    return 0;
}

#endif
