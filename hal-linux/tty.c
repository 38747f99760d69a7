/* tty.c — a terminal in raw mode while Orrery runs, always given back: on a clean end, and by
 * a guardian process when ours dies any other way (a crash, SIGKILL). */
#define _GNU_SOURCE
#include <hl/hosted.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/*
 * The guardian is forked when the mode is saved. It waits on a pipe whose write end only we
 * hold: a byte means "given back already, exit"; end of file (we died, however) means
 * "restore the saved mode, then exit". It closes everything else first, so it holds no disk
 * lock, socket or pipe of ours; it runs in a session of its own and ignores SIGINT, SIGTERM and
 * SIGHUP, so whatever ends our process group leaves it the moment it needs.
 */
static struct {
    bool saved;
    int fd;
    struct termios mode;
    int guard_w;
    pid_t guard;
} T = {.fd = -1, .guard_w = -1, .guard = -1};

static void guardian(int tty, int r, int ready)
{
    /* its own session: a kill of our process group (a terminal's, a test's) leaves it */
    setsid();
    if (write(ready, "r", 1) < 0)
        _exit(1);
    signal(SIGTTOU, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    /* keep only the terminal (3) and the pipe (4) */
    if (dup2(tty, 3) < 0 || dup2(r, 4) < 0)
        _exit(1);
    if (syscall(SYS_close_range, 5u, ~0u, 0u) != 0) {
        for (int fd = 5; fd < 65536; fd++)
            close(fd);
    }
    char c;
    ssize_t n;
    do {
        n = read(4, &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 0)
        tcsetattr(3, TCSANOW, &T.mode);
    _exit(0);
}

int hl_tty_guard(int fd)
{
    if (T.saved)
        return 0;
    if (tcgetattr(fd, &T.mode) != 0)
        return -errno;
    int p[2], ready[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    if (pipe2(ready, O_CLOEXEC) != 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return -e;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        close(ready[0]);
        close(ready[1]);
        return -e;
    }
    if (pid == 0) {
        close(p[1]);
        guardian(fd, p[0], ready[1]);
    }
    close(p[0]);
    close(ready[1]);
    /* on its own before the terminal changes: nothing that ends us can end it now */
    char c;
    ssize_t n;
    do {
        n = read(ready[0], &c, 1);
    } while (n < 0 && errno == EINTR);
    close(ready[0]);
    T.saved = true;
    T.fd = fd;
    T.guard_w = p[1];
    T.guard = pid;
    return 0;
}

int hl_tty_raw(int fd)
{
    int rc = hl_tty_guard(fd);
    if (rc != 0)
        return rc;
    struct termios raw = T.mode;
    /* cfmakeraw, but output processing stays: "\n" still starts a new line at column 0 */
    raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    raw.c_cflag |= CS8;
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &raw) != 0) {
        int e = errno;
        hl_tty_restore();
        return -e;
    }
    return 0;
}

void hl_tty_restore(void)
{
    if (!T.saved)
        return;
    tcsetattr(T.fd, TCSANOW, &T.mode);
    T.saved = false;
    ssize_t n;
    do {
        n = write(T.guard_w, "q", 1);
    } while (n < 0 && errno == EINTR);
    close(T.guard_w);
    T.guard_w = -1;
    while (waitpid(T.guard, NULL, 0) < 0 && errno == EINTR)
        ;
    T.guard = -1;
}
