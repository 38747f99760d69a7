/* ctype.h — ASCII character classes of the bare-metal C subset. */
#ifndef BM_CTYPE_H
#define BM_CTYPE_H

int isspace(int c);
int isdigit(int c);
int isalpha(int c);
int isalnum(int c);
int isprint(int c);
int isxdigit(int c);
int isupper(int c);
int islower(int c);
int tolower(int c);
int toupper(int c);

#endif
