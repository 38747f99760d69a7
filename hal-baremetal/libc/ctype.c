/* ctype.c — ASCII character classes of the bare-metal C subset (the "C" locale only). */
#include "bmlibc.h"

int bm_isspace(int c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

int bm_isdigit(int c)
{
    return c >= '0' && c <= '9';
}

int bm_isupper(int c)
{
    return c >= 'A' && c <= 'Z';
}

int bm_islower(int c)
{
    return c >= 'a' && c <= 'z';
}

int bm_isalpha(int c)
{
    return bm_isupper(c) || bm_islower(c);
}

int bm_isalnum(int c)
{
    return bm_isalpha(c) || bm_isdigit(c);
}

int bm_isprint(int c)
{
    return c >= 0x20 && c < 0x7f;
}

int bm_isxdigit(int c)
{
    return bm_isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int bm_tolower(int c)
{
    return bm_isupper(c) ? c - 'A' + 'a' : c;
}

int bm_toupper(int c)
{
    return bm_islower(c) ? c - 'a' + 'A' : c;
}

BM_ALIAS(isspace, bm_isspace)
BM_ALIAS(isdigit, bm_isdigit)
BM_ALIAS(isalpha, bm_isalpha)
BM_ALIAS(isalnum, bm_isalnum)
BM_ALIAS(isprint, bm_isprint)
BM_ALIAS(isxdigit, bm_isxdigit)
BM_ALIAS(isupper, bm_isupper)
BM_ALIAS(islower, bm_islower)
BM_ALIAS(tolower, bm_tolower)
BM_ALIAS(toupper, bm_toupper)
