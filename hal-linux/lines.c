/* lines.c — line input from an fd (tty, pipe or file); overlong lines are measured, not stored. */
#include <hl/hosted.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

void hl_lines_init(hl_lines_t *r, int fd, int cancel_fd)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->cancel_fd = cancel_fd;
}

/* Refill buf. 1: bytes read, 0: end of input, -1: cancelled or error. */
static int fill(hl_lines_t *r)
{
    if (r->eof || r->fd < 0)
        return 0;
    for (;;) {
        if (r->cancel_fd >= 0) {
            /* poll works on ttys, pipes and regular files (always readable) alike. */
            struct pollfd p[2] = {{.fd = r->fd, .events = POLLIN},
                                  {.fd = r->cancel_fd, .events = POLLIN}};
            int n = poll(p, 2, -1);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            if (p[1].revents)
                return -1;
            if (!p[0].revents)
                continue;
        }
        ssize_t got = read(r->fd, r->buf, sizeof(r->buf));
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        if (got == 0) {
            r->eof = true;
            return 0;
        }
        r->start = 0;
        r->end = (size_t)got;
        return 1;
    }
}

int hl_lines_next(hl_lines_t *r, char *line, size_t max, size_t *len)
{
    size_t total = 0; /* real length of the line so far */
    bool any = false; /* saw at least one byte of this line */
    for (;;) {
        if (r->start == r->end) {
            int f = fill(r);
            if (f < 0)
                return -1;
            if (f == 0) {
                if (!any)
                    return 0;
                break; /* last line without '\n' */
            }
        }
        char *b = r->buf + r->start;
        size_t avail = r->end - r->start;
        char *nl = memchr(b, '\n', avail);
        size_t take = nl ? (size_t)(nl - b) : avail;
        if (total < max) {
            size_t room = max - total;
            memcpy(line + total, b, take < room ? take : room);
        }
        total += take;
        any = true;
        r->start += take + (nl ? 1 : 0);
        if (nl)
            break;
    }
    /* Drop a '\r' from "\r\n" input (it was copied if it fit). */
    if (total > 0 && total <= max && line[total - 1] == '\r')
        total--;
    *len = total;
    return 1;
}
