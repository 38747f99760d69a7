/* errno.c — messages and names of the error codes, generated from OS_ERRNO_MAP. */
#include <os/errno.h>

const char *os_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define OS_ERRNO_MSG(name, value, msg)                                                             \
    case (value):                                                                                  \
        return (msg);
        OS_ERRNO_MAP(OS_ERRNO_MSG)
#undef OS_ERRNO_MSG
    default:
        return "unknown error";
    }
}

const char *os_errname(int err)
{
    switch (err) {
    case 0:
        return "OK";
#define OS_ERRNO_NAME(name, value, msg)                                                            \
    case (value):                                                                                  \
        return #name;
        OS_ERRNO_MAP(OS_ERRNO_NAME)
#undef OS_ERRNO_NAME
    default:
        return "E?";
    }
}
