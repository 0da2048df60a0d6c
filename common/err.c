/* err.c: names for ss_err codes. */
#include "ss.h"

const char *ss_strerror(int err)
{
    switch (err) {
    case SS_OK: return "ok";
    case SS_ENOMEM: return "out of memory";
    case SS_EINVAL: return "invalid argument";
    case SS_EPARSE: return "parse error";
    case SS_ELIMIT: return "limit exceeded";
    case SS_EIO: return "I/O error";
    case SS_ETIMEDOUT: return "timed out";
    case SS_EHTTP: return "HTTP error";
    case SS_ECONFIG: return "invalid configuration";
    case SS_ENOTFOUND: return "not found";
    case SS_EAUTH: return "authentication failed";
    default: return "unknown error";
    }
}
