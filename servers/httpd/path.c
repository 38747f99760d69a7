/* path.c — httpd's request-target normalisation: a path that cannot leave the root (pure). */
#include <http_parse.h>

#include <string.h>

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http_path_normalise(const char *target, size_t len, char *out, size_t cap)
{
    /* the absolute form "http://host/path" names the same resource as "/path" */
    if (len >= 7 && (memcmp(target, "http://", 7) == 0)) {
        const char *slash = memchr(target + 7, '/', len - 7);
        if (!slash)
            return -400;
        len -= (size_t)(slash - target);
        target = slash;
    }
    if (len == 0 || target[0] != '/' || cap < 2)
        return -400;
    size_t o = 0;
    out[o++] = '/';
    size_t i = 0;
    while (i < len && target[i] != '?' && target[i] != '#') {
        /* one segment, decoded, between slashes */
        if (target[i] == '/') {
            i++;
            continue;
        }
        size_t seg = o;
        while (i < len && target[i] != '/' && target[i] != '?' && target[i] != '#') {
            char c = target[i++];
            if (c == '%') {
                int h = i < len ? hex(target[i]) : -1;
                int l = i + 1 < len ? hex(target[i + 1]) : -1;
                if (h < 0 || l < 0)
                    return -400;
                c = (char)(h * 16 + l);
                i += 2;
                if (c == '/' || c == '\\')
                    return -400; /* an encoded separator would hide a segment */
            }
            if ((unsigned char)c < 0x20 || c == 0x7f || c == '\\')
                return -400;
            if (o + 1 >= cap)
                return -414;
            out[o++] = c;
        }
        size_t n = o - seg;
        if (n == 1 && out[seg] == '.') {
            o = seg; /* "." names the directory itself */
            continue;
        }
        if (n == 2 && out[seg] == '.' && out[seg + 1] == '.')
            return -400;
        if (o + 1 >= cap)
            return -414;
        out[o++] = '/';
    }
    /* keep a trailing '/' only when the target had one (or it is the root) */
    bool trailing = i > 0 && target[i - 1] == '/';
    if (o > 1 && !trailing)
        o--;
    out[o] = 0;
    return 0;
}
